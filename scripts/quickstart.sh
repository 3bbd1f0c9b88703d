#!/usr/bin/env bash
# The quickstart: build the host and the persister guest, run the guest on the
# sample Monasca messages and show what it would store, then run the main job:
# the persister pipeline on an embedded Kafka fed by the load generator.
# Second act: the metrics and log APIs on an embedded Kafka; a metric and a
# log posted with curl, the metric stored by the persister pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p monasca-wasm
cargo build --release --target wasm32-wasip2 -p persister -p metrics-api -p log-api
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

echo
echo "== second act: monasca-api's POST /v2.0/metrics and monasca-log-api's POST /v3.0/logs (examples/ingest.toml)"
rm -f target/ingest.sqlite target/ingest.sqlite-wal target/ingest.sqlite-shm
export METRICS_API_TOKEN=quickstart-token-0123456789
"$bin" run --config examples/ingest.toml --summary-every 0 &
host=$!
trap 'kill -TERM $host 2>/dev/null || true' EXIT
# The first start compiles the modules (cached after): wait up to two minutes.
ready=no
for _ in $(seq 1 600); do
  if curl -sf -o /dev/null http://127.0.0.1:8070/healthcheck && curl -sf -o /dev/null http://127.0.0.1:5607/healthcheck; then
    ready=yes
    break
  fi
  kill -0 $host 2>/dev/null || break
  sleep 0.2
done
[ "$ready" = yes ] || { echo "the APIs did not come up (see the host's output above)" >&2; exit 1; }
now_ms=$(($(date +%s) * 1000))
echo "-- POST /v2.0/metrics"
curl -sS -i http://127.0.0.1:8070/v2.0/metrics -H "X-Auth-Token: $METRICS_API_TOKEN" -H 'Content-Type: application/json' \
  -d '{"name": "cpu.idle_perc", "value": 97.5, "timestamp": '"$now_ms"', "dimensions": {"hostname": "web1"}}' | head -1
echo "-- POST /v2.0/metrics with a bad name"
curl -sS http://127.0.0.1:8070/v2.0/metrics -H "X-Auth-Token: $METRICS_API_TOKEN" -H 'Content-Type: application/json' \
  -d '{"name": "cpu idle", "value": 1, "timestamp": '"$now_ms"'}'
echo
echo "-- POST /v3.0/logs"
curl -sS -i http://127.0.0.1:5607/v3.0/logs -H "X-Auth-Token: $METRICS_API_TOKEN" -H 'Content-Type: application/json' \
  -d '{"dimensions": {"hostname": "web1"}, "logs": [{"message": "hello from the quickstart", "dimensions": {"component": "demo"}}]}' | head -1
sleep 2
kill -TERM $host
wait $host || true
trap - EXIT
echo "-- what the persister stored (target/ingest.sqlite)"
if command -v python3 >/dev/null; then
  python3 - <<'PY'
import sqlite3
db = sqlite3.connect("target/ingest.sqlite")
for series, fields in db.execute("SELECT series, fields FROM points"):
    print(f"  {series} {fields}")
PY
fi
