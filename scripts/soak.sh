#!/usr/bin/env bash
# The whole suite N times in a row while another process keeps one core busy: how we show that the
# tests hold on a loaded machine (docs/development.md).
#
#   bash scripts/soak.sh [N]      default N=3; exits non-zero when any run failed
#
# The busy process is started here and stopped here, by its pid. Each run's counts come from
# vitest's JSON report and are printed as one line; the runs' logs are in .banyan/soak/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
LOGS=.banyan/soak
mkdir -p "$LOGS"

node -e 'for (;;) {}' &
BUSY=$!
trap 'kill "$BUSY" 2>/dev/null || true' EXIT
echo "[soak] one core kept busy by pid $BUSY; $RUNS runs of npm test"

failed=0
for i in $(seq 1 "$RUNS"); do
  start=$SECONDS
  rm -f .banyan/test-results.json
  if npm test >"$LOGS/run-$i.log" 2>&1; then rc=0; else rc=$?; failed=$((failed + 1)); fi
  counts=$(node -e 'const r = require("./.banyan/test-results.json"); console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`)' 2>/dev/null || echo 'no test report (see the log)')
  echo "[soak] run $i: exit $rc, $counts, $((SECONDS - start)) s (log: $LOGS/run-$i.log)"
done
echo "[soak] $((RUNS - failed)) of $RUNS runs passed"
[ "$failed" -eq 0 ]
