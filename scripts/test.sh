#!/usr/bin/env bash
# The whole test suite. Builds everything it needs, including the guest
# components for wasm32-wasip2 (tests/build.rs), starts a real Kafka broker
# (scripts/kafka.sh: Java 17 and Maven needed) and a real InfluxDB 1.x
# (scripts/influxdb.sh: installs Debian's influxdb package when missing),
# then runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
stops=()
cleanup() { for s in "${stops[@]}"; do eval "$s" || true; done; }
trap cleanup EXIT
# One real Kafka broker and one InfluxDB for every test that needs them
# (tests start their own when the variables are unset).
if [ -z "${MONASCA_WASM_KAFKA:-}" ]; then
  stops+=("scripts/kafka.sh stop target/kafka-suite")
  MONASCA_WASM_KAFKA=$(scripts/kafka.sh start target/kafka-suite)
  export MONASCA_WASM_KAFKA
fi
if [ -z "${MONASCA_WASM_INFLUXDB:-}" ]; then
  stops+=("scripts/influxdb.sh stop target/influxdb-suite")
  MONASCA_WASM_INFLUXDB=$(scripts/influxdb.sh start target/influxdb-suite)
  export MONASCA_WASM_INFLUXDB
fi
cargo test --release --workspace "$@"
