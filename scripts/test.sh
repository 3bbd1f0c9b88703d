#!/usr/bin/env bash
# The whole test suite. Builds everything it needs, including the guest
# components for wasm32-wasip2 (tests/build.rs), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --release --workspace "$@"
