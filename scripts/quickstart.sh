#!/usr/bin/env bash
# The quickstart: build the host and the persister guest, run the guest on the
# sample Monasca messages and show what it would store, then run the main job:
# the persister pipeline on an embedded Kafka fed by the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p monasca-wasm
cargo build --release --target wasm32-wasip2 -p persister
bin=target/release/monasca-wasm
module=target/wasm32-wasip2/release/persister.wasm

echo
echo "== the module"
"$bin" inspect "$module"
echo
echo "== 27 metric envelopes -> InfluxDB points (line protocol)"
"$bin" test --module "$module" --input tests/fixtures/metrics.jsonl --topic metrics --format text
echo
echo "== 13 malformed messages -> rejects with reasons"
"$bin" test --module "$module" --input tests/fixtures/metrics-invalid.jsonl --topic metrics --format text
echo
rm -f target/quickstart.sqlite target/quickstart.sqlite-wal target/quickstart.sqlite-shm
echo "== the main job: 200,000 generated metrics through the persister on an embedded Kafka into SQLite"
"$bin" run --config examples/quickstart.toml --exit-when-idle 3 --summary-every 2
echo
echo "== what the embedded SQLite sink holds (target/quickstart.sqlite; see docs/configuration.md for the schema)"
if command -v python3 >/dev/null; then
  python3 - <<'PY'
import sqlite3
db = sqlite3.connect("target/quickstart.sqlite")
total, series = db.execute("SELECT count(*), count(DISTINCT series) FROM points").fetchone()
print(f"{total} points in {series} series; by measurement:")
for name, n in db.execute("SELECT measurement, count(*) FROM points GROUP BY 1 ORDER BY 2 DESC LIMIT 5"):
    print(f"  {name:24} {n}")
PY
else
  echo "(python3 not found: open target/quickstart.sqlite with any SQLite client)"
fi
