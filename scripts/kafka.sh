#!/usr/bin/env bash
# A real Apache Kafka broker for development, CI and tests: single node, KRaft
# (no ZooKeeper), on 127.0.0.1 only.
#
#   scripts/kafka.sh start [DIR]   fetch the jars (cached), format a fresh
#                                  store in DIR and start the broker; prints
#                                  the bootstrap address on stdout
#   scripts/kafka.sh stop [DIR]    stop the broker started in DIR
#   scripts/kafka.sh status [DIR]  exit 0 when it answers metadata requests
#
# DIR defaults to target/kafka. KAFKA_PORT picks the client port (default: a
# free one); the controller listens on another free port. With
# KAFKA_OWNER_PID set, the broker is stopped when that process exits (tests
# use it so that no broker outlives them). KAFKA_ADVERTISED_PORT makes the
# broker tell clients to connect to another port (a test proxy in front of it). The jars come from
# Maven Central through scripts/kafka/pom.xml and are cached in
# $MONASCA_WASM_CACHE/kafka-<version> (default ~/.cache/monasca-wasm).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
command=${1:-}
name=kafka.sh
# shellcheck source=lib/servers.sh
. "$here/lib/servers.sh"
dir=${2:-$root/target/kafka}

version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/kafka/pom.xml")
cache=${MONASCA_WASM_CACHE:-$HOME/.cache/monasca-wasm}/kafka-$version
lib=$cache/lib


fetch_jars() {
  if [ -f "$cache/.complete" ]; then return; fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka $version from Maven Central"
  command -v java >/dev/null || die "Java 17 or later is needed to run the Kafka broker"
  echo "kafka.sh: fetching Apache Kafka $version jars into $lib" >&2
  rm -rf "$lib"
  mvn -q -f "$here/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$lib" -DincludeScope=runtime >&2 \
    || die "could not fetch Kafka $version from Maven Central (see the Maven output above)"
  touch "$cache/.complete"
}


kafka_java() {
  java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
       -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
       -cp "$lib/*" "$@"
}

answers_metadata() {
  local bootstrap
  bootstrap=$(cat "$dir/bootstrap" 2>/dev/null) || return 1
  timeout 30 java -cp "$lib/*" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --list >/dev/null 2>&1
}

start() {
  fetch_jars
  if [ -f "$dir/broker.pid" ] && kill -0 "$(cat "$dir/broker.pid")" 2>/dev/null; then
    die "a broker is already running from $dir (pid $(cat "$dir/broker.pid")); stop it first"
  fi
  rm -rf "$dir"
  mkdir -p "$dir/data"
  local port=${KAFKA_PORT:-$(free_port)}
  local advertised_port=${KAFKA_ADVERTISED_PORT:-$port}
  local controller_port
  controller_port=$(free_port)
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$advertised_port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
PROPS
  local cluster_id
  cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
    || die "formatting the KRaft store failed: $(tail -5 "$dir/format.log")"
  echo "127.0.0.1:$port" > "$dir/bootstrap"
  nohup java -Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
       -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
       -cp "$lib/*" kafka.Kafka "$dir/server.properties" >"$dir/broker.log" 2>&1 &
  echo $! > "$dir/broker.pid"
  wait_until_up "the broker" "$dir/broker.pid" "$dir/broker.log" 60 1 answers_metadata
  if [ -n "${KAFKA_OWNER_PID:-}" ]; then
    stop_with_owner "$0" "$dir" "$KAFKA_OWNER_PID"
  fi
  echo "kafka.sh: Kafka $version answers on 127.0.0.1:$port (data and logs in $dir)" >&2
  cat "$dir/bootstrap"
}

stop() { stop_pidfile "$dir/broker.pid"; }

case "$command" in
  start) start ;;
  stop) stop ;;
  status) fetch_jars; answers_metadata ;;
  *) die "usage: scripts/kafka.sh start|stop|status [DIR]" ;;
esac
