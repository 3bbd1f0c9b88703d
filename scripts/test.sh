#!/usr/bin/env bash
# The whole test suite. Builds everything it needs, including the guest
# components for wasm32-wasip2 (tests/build.rs), starts a real Kafka broker
# (scripts/kafka.sh: Java 17 and Maven needed), a real InfluxDB 1.x
# (scripts/influxdb.sh: installs Debian's influxdb package when missing), a
# real MariaDB and a real PostgreSQL holding the notification database `mon`
# (scripts/mariadb.sh, scripts/postgres.sh: install Debian's mariadb-server /
# postgresql packages when missing), then runs every test. Tests start their
# own SMTP servers (scripts/smtp.sh). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
stops=()
cleanup() { for s in "${stops[@]}"; do eval "$s" || true; done; }
trap cleanup EXIT
# One real Kafka broker, InfluxDB, MariaDB and PostgreSQL for every test that needs them
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
if [ -z "${MONASCA_WASM_MARIADB:-}" ]; then
  stops+=("scripts/mariadb.sh stop target/mariadb-suite")
  MONASCA_WASM_MARIADB=$(scripts/mariadb.sh start target/mariadb-suite)
  export MONASCA_WASM_MARIADB
fi
if [ -z "${MONASCA_WASM_POSTGRES:-}" ]; then
  stops+=("scripts/postgres.sh stop target/postgres-suite")
  MONASCA_WASM_POSTGRES=$(scripts/postgres.sh start target/postgres-suite)
  export MONASCA_WASM_POSTGRES
fi
cargo test --release --workspace "$@"
