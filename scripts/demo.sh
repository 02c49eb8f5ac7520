#!/usr/bin/env bash
# The README's first command: start the local stack and run Banyan's main job against it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/stack.sh up
node bin/banyan.mjs doctor
