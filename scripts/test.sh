#!/usr/bin/env bash
# The whole test suite. Builds everything it needs, including the guest
# components for wasm32-wasip2 (tests/build.rs), starts a real Kafka broker
# (scripts/kafka.sh: Java 17 and Maven needed), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# One real Kafka broker for every test that needs one (tests start their own
# when MONASCA_WASM_KAFKA is unset).
if [ -z "${MONASCA_WASM_KAFKA:-}" ]; then
  dir=target/kafka-suite
  trap 'scripts/kafka.sh stop "$dir"' EXIT
  MONASCA_WASM_KAFKA=$(scripts/kafka.sh start "$dir")
  export MONASCA_WASM_KAFKA
fi
cargo test --release --workspace "$@"
