#!/usr/bin/env bash
# The whole test suite. Builds everything it needs, including the guest
# components for wasm32-wasip2 (tests/build.rs), starts a real Kafka broker
# (scripts/kafka.sh: Java 17 and Maven needed), a real InfluxDB 1.x
# (scripts/influxdb.sh: installs Debian's influxdb package when missing), a
# real MariaDB and a real PostgreSQL holding the notification database `mon`
# (scripts/mariadb.sh, scripts/postgres.sh: install Debian's mariadb-server /
# postgresql packages when missing), then runs every test. Tests start their
# own SMTP servers (scripts/smtp.sh); the transform's differential test runs
# monasca-transform 2.0.0 on a local Spark (scripts/peers/transform_oracle.sh:
# Python 3 and Java 17, a venv from PyPI made on first use); the ingest APIs'
# differential test runs monasca-log-api 2.11.0 and monasca-events-api 8.0.0
# under gunicorn (scripts/peers/ingest_peers.sh: Python 3, venvs from PyPI
# made on first use). Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
stops=()
cleanup() { for s in "${stops[@]}"; do eval "$s" || true; done; }
trap cleanup EXIT
# One real Kafka broker, InfluxDB, MariaDB and PostgreSQL for every test that
# needs them (tests start their own when the variables are unset).
# start_server VARIABLE SCRIPT: unless VARIABLE is set, start the server of
# scripts/SCRIPT.sh in target/SCRIPT-suite, export its address as VARIABLE
# and stop it when the suite ends.
start_server() {
  local variable=$1 script=$2 address
  if [ -n "${!variable:-}" ]; then return; fi
  stops+=("scripts/$script.sh stop target/$script-suite")
  address=$("scripts/$script.sh" start "target/$script-suite")
  export "$variable=$address"
}
start_server MONASCA_WASM_KAFKA kafka
start_server MONASCA_WASM_INFLUXDB influxdb
start_server MONASCA_WASM_MARIADB mariadb
start_server MONASCA_WASM_POSTGRES postgres
cargo test --release --workspace "$@"
