#!/usr/bin/env bash
# The README's first command: start the local stack, check it, and run Banyan's main job end to end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/stack.sh up
node --import tsx scripts/demo.ts
