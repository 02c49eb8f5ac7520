#!/usr/bin/env bash
# Stops the local stack with `scripts/stack.sh down` and proves it stopped what it started, and
# only that (CI runs it in place of a plain `down`):
#   - before `down`, a bystander whose command line names the stack's folders is started
#     (`tail -F <root>/.banyan/kafka/kafka.log`, as a person watching the log would), and every
#     process of the stack is listed: each pid file's process, its process group and their
#     descendants (the JVMs, the emulator's node), with their start times;
#   - after `down`, it fails loudly if the bystander died, or if any listed process still runs
#     (same pid and same start time, so a reused pid is not mistaken for a survivor), or if one of
#     the stack's ports still answers.
# Same env as stack.sh (BANYAN_*_PORT).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="${BANYAN_STACK_STATE:-$ROOT/.banyan}"
PORTS=("${BANYAN_KAFKA_PORT:-19092}" "${BANYAN_KAFKA_CONTROLLER_PORT:-19093}" "${BANYAN_REGISTRY_PORT:-18081}" "${BANYAN_SALESFORCE_PORT:-18443}")

log() { printf '[stack-down-check] %s\n' "$*" >&2; }

# "pid ppid pgid start-time" of every live process (zombies have exited and are left out).
all_processes() {
  local f stat
  for f in /proc/[0-9]*/stat; do
    read -r stat 2>/dev/null <"$f" || continue
    # shellcheck disable=SC2086
    set -- ${stat%% (*} ${stat##*) }
    [ "$2" != Z ] && echo "$1 $3 $4 ${21}"
  done
}

# The stack's processes as "pid start-time": the recorded pids, the members of their process
# groups, and every descendant of those.
stack_processes() {
  local table roots pid start
  table=$(all_processes)
  roots=" "
  for pid in $(cat "$STATE"/{kafka,registry,salesforce}/pid 2>/dev/null | awk '{print $1}'); do
    roots+="$pid "
    # Group members, when the recorded pid leads a group.
    roots+="$(awk -v g="$pid" '$3 == g { printf "%s ", $1 }' <<<"$table")"
  done
  # Descendants: repeat until no new pid is added.
  local before=
  while [ "$before" != "$roots" ]; do
    before=$roots
    roots+="$(awk -v known="$roots" 'BEGIN { n = split(known, k, " "); for (i = 1; i <= n; i++) seen[k[i]] = 1 }
      ($2 in seen) && !($1 in seen) { printf "%s ", $1 }' <<<"$table")"
  done
  for pid in $roots; do
    start=$(awk -v p="$pid" '$1 == p { print $4 }' <<<"$table")
    [ -n "$start" ] && echo "$pid $start"
  done | sort -u
}

still_alive() { # pid, start time
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  # shellcheck disable=SC2086
  set -- "$2" ${stat##*) }
  [ "$2" != Z ] && [ "${21}" = "$1" ]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mkdir -p "$STATE/kafka"
tail -F "$STATE/kafka/kafka.log" >/dev/null 2>&1 &
bystander=$!
bystander_start=$(awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$bystander/stat")
trap 'kill "$bystander" 2>/dev/null || true' EXIT

started=$(stack_processes)
log "the stack's processes before down: $(echo "$started" | awk '{ printf "%s ", $1 }')"
[ -n "$started" ] || log "warning: no process of the stack was running"

down_rc=0
bash "$ROOT/scripts/stack.sh" down || down_rc=$?

failed=0
if ! still_alive "$bystander" "$bystander_start"; then
  log "FAILED: the bystander \`tail -F $STATE/kafka/kafka.log\` (pid $bystander) was killed by down"
  failed=1
fi
while read -r pid start; do
  [ -n "$pid" ] || continue
  if still_alive "$pid" "$start"; then
    log "FAILED: pid $pid of the stack still runs after down: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-200)"
    failed=1
  fi
done <<<"$started"
for port in "${PORTS[@]}"; do
  if port_open "$port"; then log "FAILED: port $port still answers after down"; failed=1; fi
done
[ "$down_rc" -eq 0 ] || { log "FAILED: stack.sh down exited with $down_rc"; failed=1; }
[ "$failed" -eq 0 ] && log "ok: $(echo "$started" | grep -c . || true) processes of the stack stopped; the bystander lives"
exit "$failed"
