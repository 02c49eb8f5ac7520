#!/usr/bin/env bash
# The local stack without Docker: Apache Kafka (single-node KRaft) and a Confluent-compatible
# Schema Registry (Apicurio Registry 3), both from Maven Central, plus the Salesforce emulator.
#
#   scripts/stack.sh up       start what is not running, wait until each part answers
#   scripts/stack.sh down     stop what this script started, and only that; no process of it is left behind
#   scripts/stack.sh status   what runs, and where
#
# Each part runs in its own process group (setsid) and is recorded in .banyan/<part>/pid as
# "pid start-time" (field 22 of /proc/<pid>/stat): `down` signals that group only after checking
# the pid is still the process it started (a pid reused by another program is never signalled),
# SIGTERM first and SIGKILL only after BANYAN_STACK_STOP_GRACE seconds (30). Nothing is matched
# by name or command line.
#
# Ports (env): BANYAN_KAFKA_PORT (19092), BANYAN_KAFKA_CONTROLLER_PORT (19093),
# BANYAN_REGISTRY_PORT (18081), BANYAN_SALESFORCE_PORT (18443).
# State lives in .banyan/ (git-ignored); downloads in .cache/stack/ (git-ignored).
# What is running is written to .banyan/stack.env for tests, benchmarks and people to source.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# BANYAN_STACK_STATE moves the state folder (the stop tests use a folder of their own).
STATE="${BANYAN_STACK_STATE:-$ROOT/.banyan}"
CACHE="$ROOT/.cache/stack"
KAFKA_PORT=${BANYAN_KAFKA_PORT:-19092}
CONTROLLER_PORT=${BANYAN_KAFKA_CONTROLLER_PORT:-19093}
REGISTRY_PORT=${BANYAN_REGISTRY_PORT:-18081}
SALESFORCE_PORT=${BANYAN_SALESFORCE_PORT:-18443}
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/stack/pom.xml")
APICURIO_VERSION=$(sed -n 's:.*<apicurio.version>\(.*\)</apicurio.version>.*:\1:p' "$ROOT/stack/pom.xml")
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
REGISTRY_HOME="$CACHE/apicurio-$APICURIO_VERSION"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# "pgid start-time" of a live process, from /proc/<pid>/stat; fails for a pid that is gone.
proc_stat() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  # Field 2, the command name, may hold spaces and ")": the fields after it start at field 3.
  # shellcheck disable=SC2086
  set -- ${stat##*) }
  [ "$1" != Z ] || return 1 # a zombie has exited already
  echo "$3 ${20}"
}

# Runs a command in the background in a new session and process group, and records it.
start_recorded() { # dir, output file, command...
  local dir=$1 out=$2 pid stat
  shift 2
  nohup setsid "$@" >"$out" 2>&1 </dev/null &
  pid=$!
  # The start time is the fork's, kept across setsid's exec, so it is read at once.
  stat=$(proc_stat "$pid") || { cat "$out" >&2; die "$* exited at once"; }
  echo "$pid ${stat#* }" >"$dir/pid"
}

# A path each part's command line carries: how a pid file of one field (written before start times
# were recorded) is checked.
marker() {
  case $1 in
    kafka) echo "$STATE/kafka/server.properties" ;;
    registry) echo "$STATE/registry/registry.log" ;;
    salesforce) echo "$STATE/salesforce/emulator.env" ;;
  esac
}

# Prints "pid target" when the part's pid file names a process we started that still runs; target
# is what to signal: "-pgid" for its process group, or the pid alone. Fails otherwise.
owned() { # part: kafka, registry or salesforce
  local pidfile=$STATE/$1/pid pid start stat cmdline
  [ -f "$pidfile" ] || return 1
  read -r pid start <"$pidfile" || true
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  if stat=$(proc_stat "$pid"); then
    if [ -n "${start:-}" ]; then
      [ "${stat#* }" = "$start" ] || return 1
    else
      cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
      [[ "$cmdline" == *"$(marker "$1")"* ]] || return 1
      echo "$pid $pid" # not started in a group of its own: the pid alone
      return 0
    fi
    if [ "${stat%% *}" = "$pid" ]; then echo "$pid -$pid"; else echo "$pid $pid"; fi
  elif [ -n "${start:-}" ] && kill -0 -- "-$pid" 2>/dev/null; then
    # The leader is gone but its group lives on: Linux reuses no id while a group holds it.
    echo "$pid -$pid"
  else
    return 1
  fi
}

# Whether the target still runs: a group with any member, or the pid with its start time.
target_alive() { # target, start time of the pid
  if [ "${1:0:1}" = - ]; then kill -0 -- "$1" 2>/dev/null; else
    local stat
    stat=$(proc_stat "$1") && [ "${stat#* }" = "$2" ]
  fi
}

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
  log "$name is ready"
}

# Returns 1 (start nothing) when our process already runs; dies when a stranger holds the port.
needs_start() { # name, part, port, port variable
  local running dir=$STATE/$2
  if running=$(owned "$2"); then log "$1 already running (pid ${running%% *})"; return 1; fi
  port_open "$3" && die "port $3 is taken by another process; set $4"
  mkdir -p "$dir"
}

fetch_kafka() {
  [ -f "$KAFKA_LIBS/.complete" ] && return
  log "resolving Kafka $KAFKA_VERSION from Maven Central (once)"
  mkdir -p "$KAFKA_LIBS"
  mvn -q -B -f "$ROOT/stack/pom.xml" -Pkafka dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" >&2
  touch "$KAFKA_LIBS/.complete"
}

fetch_registry() {
  [ -f "$REGISTRY_HOME/.complete" ] && return
  log "resolving Apicurio Registry $APICURIO_VERSION from Maven Central (once)"
  mkdir -p "$REGISTRY_HOME"
  mvn -q -B -f "$ROOT/stack/pom.xml" dependency:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
    -DoutputDirectory="$REGISTRY_HOME" >&2
  tar xzf "$REGISTRY_HOME"/apicurio-registry-app-*-all.tar.gz -C "$REGISTRY_HOME"
  rm -f "$REGISTRY_HOME"/apicurio-registry-app-*-all.tar.gz
  touch "$REGISTRY_HOME/.complete"
}

kafka_up() {
  local dir="$STATE/kafka"
  needs_start "Kafka" kafka "$KAFKA_PORT" BANYAN_KAFKA_PORT || return 0
  fetch_kafka
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
log.segment.bytes=104857600
EOF
  cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$dir/kafka.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
EOF
  local java=(java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$dir/log4j.properties" -cp "$KAFKA_LIBS/*")
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id=$("${java[@]}" kafka.tools.StorageTool random-uuid)
    "${java[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "formatting Kafka storage failed"; }
  fi
  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  start_recorded "$dir" "$dir/stdout.log" "${java[@]}" kafka.Kafka "$dir/server.properties"
  wait_for "Kafka" 120 node "$ROOT/scripts/kafka-ready.mjs" "127.0.0.1:$KAFKA_PORT" \
    || { tail -20 "$dir/kafka.log" >&2; die "Kafka did not answer within 120 s (log: $dir/kafka.log)"; }
}

registry_up() {
  local dir="$STATE/registry"
  needs_start "Schema Registry" registry "$REGISTRY_PORT" BANYAN_REGISTRY_PORT || return 0
  fetch_registry
  log "starting Apicurio Registry $APICURIO_VERSION on 127.0.0.1:$REGISTRY_PORT"
  # In-memory storage: the stack is for development and tests. Canonical hashing makes the
  # ccompat API return the same id for a schema that differs only in formatting, as Confluent does.
  start_recorded "$dir" "$dir/stdout.log" java -Xms128m -Xmx512m -Djava.awt.headless=true \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.log.file.enable=true -Dquarkus.log.file.path="$dir/registry.log" \
    -Dquarkus.log.console.enable=false \
    -Dapicurio.ccompat.use-canonical-hash=true \
    -Dapicurio.rest.deletion.artifact.enabled=true \
    -Dapicurio.rest.deletion.artifact-version.enabled=true \
    -jar "$REGISTRY_HOME"/apicurio-registry-app-*-runner.jar
  wait_for "Schema Registry" 120 curl -sf "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" \
    || { tail -20 "$dir/stdout.log" >&2; die "Schema Registry did not answer within 120 s"; }
}

salesforce_up() {
  local dir="$STATE/salesforce"
  [ -f "$ROOT/tools/salesforce-emulator/main.ts" ] || return 0
  needs_start "Salesforce emulator" salesforce "$SALESFORCE_PORT" BANYAN_SALESFORCE_PORT || return 0
  log "starting the Salesforce emulator on 127.0.0.1:$SALESFORCE_PORT"
  start_recorded "$dir" "$dir/emulator.log" node --import tsx "$ROOT/tools/salesforce-emulator/main.ts" \
    --port "$SALESFORCE_PORT" --seed demo --env-out "$dir/emulator.env"
  wait_for "Salesforce emulator" 60 test -s "$dir/emulator.env" \
    || { tail -20 "$dir/emulator.log" >&2; die "Salesforce emulator did not start within 60 s"; }
}

# The demo legacy databases live on the machine's own PostgreSQL and MariaDB; create them if a
# client is installed and the server answers. Banyan's tests make their own fresh schemas.
demo_databases() {
  if command -v psql >/dev/null; then
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='banyan_demo'" 2>/dev/null | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -qc 'CREATE DATABASE banyan_demo' 2>/dev/null \
      || log "PostgreSQL at 127.0.0.1:5432 did not take CREATE DATABASE banyan_demo; the demo needs it"
  fi
  if command -v mariadb >/dev/null; then
    mariadb -h 127.0.0.1 -u root -e 'CREATE DATABASE IF NOT EXISTS banyan_demo' 2>/dev/null \
      || log "MariaDB at 127.0.0.1:3306 did not take CREATE DATABASE banyan_demo; the demo needs it"
  fi
}

write_env() {
  {
    echo "KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
    echo "SCHEMA_REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"
    [ -f "$STATE/salesforce/emulator.env" ] && cat "$STATE/salesforce/emulator.env"
  } >"$STATE/stack.env"
  log "wrote $STATE/stack.env"
}

# How many topics the broker holds, and how many tests and benches left: a broker full of them is
# slower (docs/performance.md). Advice only; never fails.
topics_summary() {
  node "$ROOT/scripts/stack-topics.mjs" --summary --broker "127.0.0.1:$KAFKA_PORT" >&2 || true
}

stop_one() { # name, part
  local name=$1 pidfile=$STATE/$2/pid running pid target start stat grace=${BANYAN_STACK_STOP_GRACE:-30} deadline
  [ -f "$pidfile" ] || return 0
  if ! running=$(owned "$2"); then
    log "$name is not running: $pidfile names no process the stack started that still runs; nothing signalled"
    rm -f "$pidfile"
    return 0
  fi
  pid=${running%% *} target=${running#* }
  start=$(stat=$(proc_stat "$pid") && echo "${stat#* }" || true)
  log "stopping $name (pid $pid$([ "${target:0:1}" = - ] && echo " and its process group"))"
  kill -TERM -- "$target" 2>/dev/null || true
  deadline=$((SECONDS + grace))
  while target_alive "$target" "$start" && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
  if target_alive "$target" "$start"; then
    log "$name still runs ${grace} s after SIGTERM; sending SIGKILL"
    kill -KILL -- "$target" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while target_alive "$target" "$start" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    if target_alive "$target" "$start"; then
      # The other parts are still stopped; down fails at the end.
      log "error: $name (pid $pid) survived SIGKILL; pid file kept: $pidfile"
      STOP_FAILED=1
      return 0
    fi
  fi
  rm -f "$pidfile"
}

down() {
  STOP_FAILED=0
  stop_one "Salesforce emulator" salesforce
  stop_one "Schema Registry" registry
  stop_one "Kafka" kafka
  # Kafka's data is disposable between runs: a fresh stack is a fresh cluster.
  [ "$STOP_FAILED" -eq 0 ] || die "some processes of the stack still run (see above)"
  rm -rf "$STATE/kafka/data" "$STATE/stack.env" "$STATE/salesforce/emulator.env"
}

status() {
  local name running
  for name in kafka registry salesforce; do
    if running=$(owned "$name"); then echo "$name: running (pid ${running%% *})"; else echo "$name: stopped"; fi
  done
  [ -f "$STATE/stack.env" ] && cat "$STATE/stack.env"
  owned kafka >/dev/null && topics_summary
  return 0
}

case "${1:-}" in
  up) mkdir -p "$STATE"; kafka_up; registry_up; salesforce_up; demo_databases; write_env; topics_summary ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
