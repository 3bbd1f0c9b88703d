#!/usr/bin/env bash
# The original monasca-persister 9.0.0 (PyPI, Python) as a differential-test
# oracle for the persister guest: its own InfluxDB rendering code, run
# in-process on generated Kafka message values, without Kafka or InfluxDB.
#
#   scripts/peers/persister_oracle.sh VENV_DIR SEED COUNT OUT.jsonl
#
# Generates COUNT message values from SEED (the same SEED gives the same
# file), about 75% for the `metrics` topic and 25% for
# `alarm-state-transitions`, plain ones and many classes of edge cases
# (big integers, odd floats, wrong types, duplicate keys, escapes, lone
# surrogates, BOM, broken JSON, invalid UTF-8, tombstones, ...), and renders
# each with MetricInfluxdbRepository.process_message or
# AlarmStateHistInfluxdbRepository.process_message. OUT gets one JSON a line,
# in generation order:
#   {"topic": T, "value": BASE64|null, "class": C, "line": L, "tenant": S}
#   {"topic": T, "value": BASE64|null, "class": C, "error": "Type: message"}
# "value" is the raw Kafka value (null: a tombstone); "line" is the InfluxDB
# line the original writes and "tenant" str() of the tenant id it returns;
# "error" is the exception the original drops the message for, or a
# UnicodeEncodeError for a line its influxdb client cannot encode. A count
# per class goes to stderr. Details: scripts/peers/persister_oracle.py.
#
# VENV_DIR is created on first use (under a lock; about 20 s from PyPI) with
# python3 -m venv (PERSISTER_ORACLE_PYTHON overrides the interpreter; the
# pins were resolved on Python 3.11, which the int/str digit limit the
# oracle sets needs at least) and exactly the packages below, installed
# without dependency resolution: monasca-persister 9.0.0 (2023-10-04) and
# what importing its two InfluxDB repositories needs, at the openstack/
# requirements 2023.2 upper-constraints of that release (simplejson 3.19.1,
# oslo.config 9.2.0, oslo.log 5.3.0, influxdb 5.3.1). Not installed: its
# Cassandra and Kafka dependencies (cassandra-driver, monasca-common), which
# these modules do not import. Note simplejson >= 3.19 rejects the NaN and
# Infinity literals by default, so with these pins the original drops such
# messages (older simplejson accepted them).
# A venv whose marker file does not match the pins below is made afresh.
# A run of 3000 messages takes about a second.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=persister_oracle.sh
die() { echo "$name: $*" >&2; exit 1; }
usage="usage: scripts/peers/persister_oracle.sh VENV_DIR SEED COUNT OUT.jsonl"

requirements() {
  cat <<'REQ'
monasca-persister==9.0.0
simplejson==3.19.1
oslo.config==9.2.0
oslo.log==5.3.0
influxdb==5.3.1
certifi==2023.7.22
charset-normalizer==3.1.0
debtcollector==2.5.0
idna==3.4
iso8601==1.1.0
msgpack==1.0.5
netaddr==0.8.0
netifaces==0.11.0
oslo.context==5.2.0
oslo.i18n==6.1.0
oslo.serialization==5.2.0
oslo.utils==6.2.1
packaging==23.1
pbr==5.11.1
pyinotify==0.9.6
pyparsing==3.0.9
python-dateutil==2.8.2
pytz==2023.3
PyYAML==6.0
requests==2.28.2
rfc3986==2.0.0
setuptools==65.5.0
six==1.16.0
stevedore==5.1.0
tzdata==2023.3
urllib3==1.26.15
wrapt==1.15.0
REQ
}

import_check='import sys, simplejson
from monasca_persister.repositories.influxdb.metrics_repository import MetricInfluxdbRepository
from monasca_persister.repositories.influxdb.alarm_state_history_repository import AlarmStateHistInfluxdbRepository
assert simplejson.__version__ == "3.19.1", simplejson.__version__
sys.set_int_max_str_digits'

[ $# -eq 4 ] || die "$usage"
venv=$1
seed=$2
count=$3
output=$4
[[ $seed =~ ^-?[0-9]+$ ]] || die "SEED must be an integer, not '$seed'; $usage"
[[ $count =~ ^[0-9]+$ ]] && [ "$count" -gt 0 ] || die "COUNT must be a positive integer, not '$count'; $usage"
[ -d "$(dirname "$output")" ] || die "no such directory for $output"
python=$venv/bin/python
marker=$venv/.persister-oracle-ready
requirements_hash=$(requirements | sha256sum | cut -c1-16)

venv_ready() {
  [ "$(cat "$marker" 2>/dev/null)" = "$requirements_hash" ] \
    && "$python" -c "$import_check" 2>/dev/null
}

# Create the venv once, under a lock (tests may run the oracle in parallel).
# The marker is written last: a half-made venv is made again.
make_venv() {
  venv_ready && return
  local base_python=${PERSISTER_ORACLE_PYTHON:-python3}
  command -v "$base_python" >/dev/null || die "$base_python (with the venv module) is needed"
  mkdir -p "$(dirname "$venv")"
  exec 9>"${venv%/}.lock"
  flock 9
  if ! venv_ready; then
    echo "$name: creating $venv with monasca-persister==9.0.0" >&2
    rm -rf "$venv"
    "$base_python" -m venv "$venv" >&2 || die "$base_python -m venv $venv failed (Debian: apt-get install python3-venv)"
    requirements > "$venv/requirements.txt"
    "$python" -m pip install -q --disable-pip-version-check --no-input --no-deps \
      -r "$venv/requirements.txt" >&2 \
      || die "pip install into $venv failed (see the pip output above)"
    "$python" -c "$import_check" \
      || die "the new venv $venv cannot import monasca-persister's InfluxDB repositories (Python >= 3.11 is needed)"
    echo "$requirements_hash" > "$marker"
  fi
  exec 9>&-
}

make_venv

# Write to a temporary file first: a failed run leaves no partial output.
tmp_out=$(mktemp "${output}.XXXXXX")
trap 'rm -f "$tmp_out"' EXIT
"$python" "$here/persister_oracle.py" "$seed" "$count" "$tmp_out" \
  || die "the monasca-persister oracle failed (see above)"
lines=$(wc -l < "$tmp_out")
[ "$lines" -eq "$count" ] || die "the monasca-persister oracle wrote $lines lines, not $count"
chmod 644 "$tmp_out"
mv "$tmp_out" "$output"
