#!/usr/bin/env bash
# The original monasca-transform 2.0.0 (PyPI, Python on Spark) as a differential
# test oracle: its own aggregation code, run in a local Spark on a file of
# metrics, without Kafka, MySQL or a Spark cluster.
#
#   scripts/peers/transform_oracle.sh INPUT.jsonl OUTPUT.jsonl
#         [--pre-transform-specs F] [--transform-specs F] [--pre-hourly-output F]
#
# INPUT has one metric envelope a line, as on the `metrics` topic:
#   {"metric":{"name":..,"dimensions":{..},"timestamp":MS,"value":..,"value_meta":..},
#    "meta":{"tenantId":..,"region":..},"creation_time":S}
# The whole file is ONE stage-1 batch (MonMetricsKafkaProcessor.rdd_to_recordstore),
# followed by the pre-hourly stage (PreHourlyProcessor.run_processor) on the
# instance-usage records stage 1 published. OUTPUT gets the final metrics the
# original publishes to the `metrics` topic, one JSON a line, serialized as
# the original does, sorted by (metric.name, metric.dimensions). The metric
# timestamp/creation_time is the simulated processing time: one hour and
# late_metric_slack_time (600 s) after the top of the input's last hour.
# --pre-hourly-output F also writes the instance-usage records (the
# metrics_pre_hourly topic). The specs default to the repo's copies of the
# shipped specs, guests/transform/specs/{pre,}transform_specs.json, which
# the transform guest embeds too (one spec JSON a line, as in the MySQL
# tables). How the I/O is replaced:
# see scripts/peers/transform_oracle.py.
#
# Needs python3 with the venv module (the pins below were resolved on 3.11) and
# Java 17 (Spark 3.5 also runs on Java 8 and 11). The venv
# target/peers/transform-venv (override with TRANSFORM_ORACLE_VENV) is created
# on first use, under a lock, with monasca-transform==2.0.0, pyspark==3.5.7 and
# every dependency pinned below (about 300 MB, a minute from PyPI).
# A run takes 2-3 minutes on 2 cores, nearly independent of the input size
# (20,000 lines: 146 s): the original starts ~600 small Spark jobs for the 26
# shipped transform specs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
name=transform_oracle.sh
die() { echo "$name: $*" >&2; exit 1; }
usage="usage: scripts/peers/transform_oracle.sh INPUT.jsonl OUTPUT.jsonl [--pre-transform-specs F] [--transform-specs F] [--pre-hourly-output F]"

venv=${TRANSFORM_ORACLE_VENV:-$root/target/peers/transform-venv}
python=$venv/bin/python

# pyspark 3.5 is the newest Spark that still runs the original unchanged:
# Spark 4 turns ANSI SQL mode on (the original divides string columns) and
# needs Java 17+/Python 3.9+; Spark <= 3.2 does not support Java 17, and
# Spark 2.x (what monasca-transform was written for) needs Python <= 3.7 and
# Java 8. monasca-common 3.8.0 still ships kafka_lib, which the original imports.
# The rest is what pip resolved for these two on Python 3.11, pinned.
requirements() {
  cat <<'REQ'
monasca-transform==2.0.0
pyspark==3.5.7
py4j==0.10.9.7
monasca-common==3.8.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
confluent-kafka==2.16.1
debtcollector==3.1.0
dnspython==2.9.2
eventlet==0.41.3
fasteners==0.20
futurist==3.5.0
greenlet==3.5.6
idna==3.21
iso8601==2.1.0
kazoo==2.11.0
msgpack==1.2.4
netaddr==1.3.0
oslo.concurrency==7.6.1
oslo.config==10.7.0
oslo.context==6.5.0
oslo.i18n==6.9.0
oslo.log==8.3.2
oslo.policy==6.0.1
oslo.serialization==5.11.0
oslo.service==4.8.0
oslo.utils==10.2.0
packaging==26.4
Paste==3.10.1
PasteDeploy==3.1.0
pbr==7.1.3
psutil==7.2.2
PyMySQL==1.2.4
pyparsing==3.3.3
python-dateutil==4.0.0
PyYAML==6.0.4
repoze-lru==0.8
requests==2.34.2
rfc3986==2.0.0
Routes==2.5.1
simplejson==4.3.0
six==1.17.0
SQLAlchemy==2.1.9
stevedore==5.10.0
tenacity==9.2.1
tooz==9.1.0
typing_extensions==4.16.0
tzdata==2026.6
urllib3==2.8.0
voluptuous==0.16.0
WebOb==1.8.11
wrapt==2.5.2
yappi==1.7.6
REQ
}

venv_ready() {
  "$python" -c 'import monasca_transform.component.usage.fetch_quantity, pyspark, monasca_common.kafka_lib' \
    2>/dev/null && [ -f "$venv/.transform-oracle-ready" ]
}

# Create the venv once (under a lock: tests may run the oracle in parallel).
make_venv() {
  venv_ready && return
  command -v python3 >/dev/null || die "python3 (with the venv module) is needed for monasca-transform"
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if ! venv_ready; then
    echo "$name: creating $venv with monasca-transform==2.0.0 and pyspark==3.5.7" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    requirements > "$venv/requirements.txt"
    "$python" -m pip install -q --disable-pip-version-check -r "$venv/requirements.txt" >&2 \
      || die "pip install of monasca-transform==2.0.0 and pyspark==3.5.7 failed (see the pip output above)"
    "$python" -c 'import monasca_transform.component.usage.fetch_quantity, pyspark, monasca_common.kafka_lib' \
      || die "the new venv $venv cannot import monasca_transform, pyspark or monasca_common.kafka_lib"
    touch "$venv/.transform-oracle-ready"
  fi
  exec 9>&-
}

[ $# -ge 2 ] || die "$usage"
input=$1
output=$2
shift 2
pre_transform_specs=$root/guests/transform/specs/pre_transform_specs.json
transform_specs=$root/guests/transform/specs/transform_specs.json
pre_hourly_output=""
while [ $# -gt 0 ]; do
  case "$1" in
    --pre-transform-specs) pre_transform_specs=${2:?--pre-transform-specs needs a file}; shift 2 ;;
    --transform-specs) transform_specs=${2:?--transform-specs needs a file}; shift 2 ;;
    --pre-hourly-output) pre_hourly_output=${2:?--pre-hourly-output needs a file}; shift 2 ;;
    *) die "unknown option $1; $usage" ;;
  esac
done
for f in "$input" "$pre_transform_specs" "$transform_specs"; do
  [ -f "$f" ] || die "no such file: $f"
done
command -v java >/dev/null || [ -n "${JAVA_HOME:-}" ] \
  || die "java is needed for Spark (Debian: apt-get install openjdk-17-jre-headless)"

make_venv

args=("$input" "$output" --pre-transform-specs "$pre_transform_specs" --transform-specs "$transform_specs")
[ -z "$pre_hourly_output" ] || args+=(--pre-hourly-output "$pre_hourly_output")
# Write to temporary files first: a failed run leaves no partial output.
tmp_out=$(mktemp "${output}.XXXXXX")
tmp_pre=""
[ -z "$pre_hourly_output" ] || tmp_pre=$(mktemp "${pre_hourly_output}.XXXXXX")
trap 'rm -f "$tmp_out" ${tmp_pre:+"$tmp_pre"}' EXIT
args[1]=$tmp_out
[ -z "$pre_hourly_output" ] || args[${#args[@]}-1]=$tmp_pre
TZ=UTC "$python" "$here/transform_oracle.py" "${args[@]}" \
  || die "the monasca-transform oracle failed on $input (see above)"
[ -s "$tmp_out" ] || die "the monasca-transform oracle wrote no metric for $input"
chmod 644 "$tmp_out" ${tmp_pre:+"$tmp_pre"}
mv "$tmp_out" "$output"
[ -z "$pre_hourly_output" ] || mv "$tmp_pre" "$pre_hourly_output"
