#!/usr/bin/env bash
# The original monasca-notification 9.0.0 (PyPI, Python) as a differential
# test oracle on GENERATED alarm transitions: its real NotificationEngine,
# AlarmProcessor, MysqlRepo and plugins, every side effect intercepted.
#
#   scripts/peers/notification_oracle.sh VENV_DIR SEED COUNT OUT.jsonl
#
# SEED (an integer) and COUNT decide the generated Kafka message values:
# the same SEED and COUNT give a byte-identical OUT.jsonl. OUT.jsonl gets
# one JSON object a line, one per message: the message value in base64 and
# what the original did with it (SQL, Kafka records, HTTP requests, mails,
# Jira calls, exceptions), laid out as tests/fixtures/notification/expected/
# <case>.json, plus the generator class and, for the Slack cases, the
# variant (method URL or canned Slack answer) they ran under. The generator,
# the line layout and the interception are described in
# scripts/peers/notification_differential.py; the interception itself is
# scripts/peers/notification_expected.py's (fixed `now`, methods.json rows).
# A per-class summary goes to stderr.
#
# VENV_DIR is created on first use (under a lock) with
# monasca-notification[jira_plugin]==9.0.0 and every dependency pinned below
# (what pip resolved on Python 3.11; simplejson, requests, jira and Jinja2 at
# the versions the fixtures' README names, since they shape the bytes sent);
# a marker file VENV_DIR/.notification-oracle-ready marks a complete venv.
# The first use needs PyPI (about 25 s), later ones start at once. No
# network, Kafka, MySQL or SMTP is used while generating: the original takes
# about 5 ms a message, 1500 messages take under 10 s (about 70 MB of output).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=notification_oracle.sh
die() { echo "$name: $*" >&2; exit 1; }
usage="usage: scripts/peers/notification_oracle.sh VENV_DIR SEED COUNT OUT.jsonl"

requirements() {
  cat <<'REQ'
monasca-notification[jira_plugin]==9.0.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
confluent-kafka==2.16.2
debtcollector==3.1.0
defusedxml==0.7.1
idna==3.21
iso8601==2.1.0
Jinja2==3.1.6
jira==3.10.5
kazoo==2.11.0
keystoneauth1==5.18.1
MarkupSafe==3.0.4
monasca-common==3.8.0
monasca-statsd==2.7.0
msgpack==1.2.4
netaddr==1.3.0
oauthlib==4.0.1
os-service-types==1.9.0
oslo.config==10.7.0
oslo.context==6.5.0
oslo.i18n==6.9.0
oslo.log==8.3.2
oslo.policy==6.0.1
oslo.serialization==5.11.0
oslo.utils==10.2.0
packaging==26.4
pbr==7.1.3
psutil==7.2.2
PyMySQL==1.2.4
pyparsing==3.3.3
python-dateutil==4.0.0
PyYAML==6.0.4
requests==2.34.2
requests-oauthlib==2.0.0
requests-toolbelt==1.0.0
rfc3986==2.0.0
simplejson==4.3.0
six==1.17.0
stevedore==5.10.0
typing_extensions==4.16.0
tzdata==2026.6
urllib3==2.8.0
wrapt==2.5.2
REQ
}

[ $# -eq 4 ] || die "$usage"
venv=$1
seed=$2
count=$3
output=$4
[[ $seed =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, not '$seed'; $usage"
[[ $count =~ ^[1-9][0-9]*$ ]] || die "COUNT must be a positive integer, not '$count'; $usage"
case "$venv" in /*) ;; *) venv=$PWD/$venv ;; esac
python=$venv/bin/python
marker=$venv/.notification-oracle-ready
check='import monasca_notification.notification_engine, monasca_notification.plugins.jira_notifier, jinja2'

venv_ready() {
  [ -f "$marker" ] && "$python" -c "$check" 2>/dev/null
}

# Create the venv once (under a lock: several runs may share VENV_DIR).
make_venv() {
  venv_ready && return
  command -v python3 >/dev/null || die "python3 (with the venv module) is needed for monasca-notification"
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if ! venv_ready; then
    echo "$name: creating $venv with monasca-notification[jira_plugin]==9.0.0" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    requirements > "$venv/requirements.txt"
    "$python" -m pip install -q --disable-pip-version-check -r "$venv/requirements.txt" >&2 \
      || die "pip install of monasca-notification[jira_plugin]==9.0.0 failed (see the pip output above)"
    "$python" -c "$check" || die "the new venv $venv cannot import monasca_notification and its plugins"
    touch "$marker"
  fi
  exec 9>&-
}

make_venv

# Write to a temporary file first: a failed run leaves no partial output.
tmp_out=$(mktemp "${output}.XXXXXX")
trap 'rm -f "$tmp_out"' EXIT
# The generator must not depend on the hash seed, the host's time zone or a
# CA bundle/proxy of the environment (notification_expected.py removes those).
PYTHONHASHSEED=0 TZ=UTC "$python" "$here/notification_differential.py" "$seed" "$count" "$tmp_out" \
  || die "the monasca-notification oracle failed (see above)"
[ -s "$tmp_out" ] || die "the monasca-notification oracle wrote nothing"
lines=$(wc -l < "$tmp_out")
[ "$lines" -eq "$count" ] || die "the monasca-notification oracle wrote $lines lines, not $count"
chmod 644 "$tmp_out"
mv "$tmp_out" "$output"
