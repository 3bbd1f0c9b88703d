#!/usr/bin/env bash
# The original monasca-log-api 2.11.0 and monasca-events-api 8.0.0 (PyPI,
# Python) as differential-test peers of the log-api and events-api guests:
# the same HTTP requests go to them and to our host, then the status codes and
# the Kafka records are compared.
#
#   scripts/peers/ingest_peers.sh start DIR KAFKA_BOOTSTRAP TOKENS_JSON
#       create the two venvs (once, cached in DIR), write their config and
#       paste files into DIR, start both under gunicorn on 127.0.0.1 (free
#       ports), wait until every worker loaded the app and `GET /` answers;
#       prints on stdout
#           log-api http://127.0.0.1:PORT
#           events-api http://127.0.0.1:PORT
#       Starting again with the same arguments and environment while both
#       run just prints the two lines again; otherwise running peers are
#       stopped and started afresh.
#   scripts/peers/ingest_peers.sh stop DIR
#       stop both (and every worker); no-op when nothing runs
#   scripts/peers/ingest_peers.sh status DIR
#       exit 0 when both run and answer
#
# TOKENS_JSON is a file: [{"token": "...", "project_id": "...", "roles":
# ["..."], "user_id": "..."}] (re-read when it changes). It replaces
# keystonemiddleware's auth_token in the originals' own paste pipelines
# (scripts/peers/ingest_peers.py, copied into DIR): client-sent identity
# headers are removed, a known X-Auth-Token gets X-Identity-Status:
# Confirmed, X-Roles (comma-joined), X-Project-Id, X-User-Id; a missing or
# unknown one gets auth_token's 401 {"error": {"code": 401, "title":
# "Unauthorized", "message": "The request you have made requires
# authentication."}} with `WWW-Authenticate: Keystone uri=""`.
#
# Kafka: both originals hard-wire monasca_common's legacy kafka-python-era
# producer, which Apache Kafka 4 refuses; ingest_peers.py replaces it with a
# synchronous confluent-kafka producer (acks=1, key = the ms timestamp once
# per publish call, produce + flush, one retry, then a FailedPayloadsError so
# that the originals' own failure paths run: log-api 503, events-api 400).
# Everything else is the originals' code and default configuration
# (max_log_size and max_message_size 1048576, max_request_body_size 114688,
# policies, roles). Topics and region come from the environment at start:
#   LOG_API_TOPIC      [log_publisher] topics (default logs; a comma-separated
#                      list publishes every log to each topic, as the original)
#   EVENTS_API_TOPIC   [events_publisher] topics (default monevents; a list too)
#   LOG_API_REGION     [service] region (default unset: "region": null)
#   LOG_API_PORT, EVENTS_API_PORT  fixed ports instead of free ones
#   INGEST_PEERS_MESSAGE_TIMEOUT_MS  librdkafka message.timeout.ms (default
#                      5000): how long a publish may wait for the broker
#   INGEST_PEERS_VENVS a directory for the venvs instead of DIR (shared cache)
#   INGEST_PEERS_PYTHON the interpreter for the venvs (default python3; the
#                      pins below were resolved on Python 3.11)
#   INGEST_PEERS_OWNER_PID  stop the peers when that process exits
#
# Each runs 4 sync gunicorn workers (the originals' paste files suggest
# eventlet, which the confluent-kafka flush would block anyway). Logs
# (gunicorn's, the access log, oslo.log's and librdkafka's) go to
# DIR/log-api.log and DIR/events-api.log. /healthcheck still uses the
# originals' legacy Kafka client (not replaced; its metadata request works on
# Kafka 4): log-api answers 200 once its topics exist, events-api always 503
# (its topic check compares str with bytes).
#
# Versions. log-api 2.11.0 (2020-06-18) cannot run on falcon >= 3: its venv
# follows openstack/requirements' upper-constraints of that day (falcon 2.0.0,
# simplejson 3.17.0, monasca-common 3.1.0, oslo.* of Ussuri, gunicorn 20.0.4),
# raised only where Python 3.11 needs it: greenlet 2.0.2, wrapt 1.15.0 (the
# 2023.2 pins; the 2020 ones do not build or import on 3.11), oslo.context
# 3.2.0 (3.1.0 uses collections.MutableMapping; 3.2.0 differs only there),
# oslo.policy 3.6.1 (up to 3.6.0 every policy check fails on
# collections.MutableMapping) and confluent-kafka 2.1.0 (for the replacement
# producer; 1.4.2 has no 3.11 wheel). events-api 8.0.0 (2023-10-04)
# installs as the 2023.2 constraints pin it (falcon 3.1.1, simplejson 3.19.1,
# voluptuous 0.13.1, monasca-common 3.8.0, gunicorn 20.1.0). A few packages
# are built from source (simplejson, msgpack, PyYAML, netifaces, MarkupSafe):
# gcc and the Python headers are needed on the first start (46 s with an
# empty pip cache; later starts 3-5 s).
#
# Under gunicorn, unlike in-process: a request whose exception escapes falcon
# (log-api: a dimension value that is an object, a body that is a number or a
# string containing "logs") gets no response at all (webob's
# DisconnectionError is an IOError: gunicorn closes the connection), and a
# log filling max_message_size exceeds a default broker's message.max.bytes
# (1048588), so it gets 503.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
command=${1:-}
name=ingest_peers.sh
# shellcheck source=../lib/servers.sh
. "$root/scripts/lib/servers.sh"
usage="usage: scripts/peers/ingest_peers.sh start DIR KAFKA_BOOTSTRAP TOKENS_JSON | stop DIR | status DIR"
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || die "$usage"
dir=$1
shift
peers=(log-api events-api)
workers=4

log_api_requirements() {
  cat <<'REQ'
monasca-log-api==2.11.0
falcon==2.0.0
simplejson==3.17.0
monasca-common==3.1.0
monasca-statsd==2.0.0
gunicorn==20.0.4
confluent-kafka==2.1.0
greenlet==2.0.2
wrapt==1.15.0
oslo.context==3.2.0
certifi==2020.4.5.1
chardet==3.0.4
debtcollector==2.1.0
decorator==4.4.2
dnspython==1.16.0
dogpile.cache==0.9.2
eventlet==0.25.2
idna==2.9
iso8601==0.1.12
Jinja2==2.11.2
kazoo==2.7.0
keystoneauth1==4.0.0
keystonemiddleware==9.0.0
MarkupSafe==1.1.1
monotonic==1.5
msgpack==0.6.1
netaddr==0.7.19
netifaces==0.10.9
os-service-types==1.7.0
oslo.cache==2.4.1
oslo.config==8.1.0
oslo.i18n==5.0.0
oslo.log==4.2.1
oslo.middleware==4.1.0
oslo.policy==3.6.1
oslo.serialization==3.2.0
oslo.utils==4.2.0
Paste==3.4.1
PasteDeploy==2.1.0
pbr==5.4.5
pycadf==3.0.0
pyinotify==0.9.6
PyMySQL==0.9.3
pyparsing==2.4.7
python-dateutil==2.8.1
python-keystoneclient==4.0.0
pytz==2020.1
PyYAML==5.3.1
requests==2.23.0
rfc3986==1.4.0
setuptools==65.5.0
six==1.15.0
statsd==3.3.0
stevedore==2.0.0
urllib3==1.25.9
WebOb==1.8.6
REQ
}

events_api_requirements() {
  cat <<'REQ'
monasca-events-api==8.0.0
falcon==3.1.1
simplejson==3.19.1
voluptuous==0.13.1
monasca-common==3.8.0
gunicorn==20.1.0
confluent-kafka==2.1.0
bcrypt==4.0.1
certifi==2023.7.22
charset-normalizer==3.1.0
debtcollector==2.5.0
decorator==5.1.1
dnspython==2.3.0
dogpile.cache==1.1.8
eventlet==0.33.3
greenlet==2.0.2
idna==3.4
iso8601==1.1.0
Jinja2==3.1.2
kazoo==2.9.0
keystoneauth1==5.3.0
keystonemiddleware==10.4.1
MarkupSafe==2.1.2
msgpack==1.0.5
netaddr==0.8.0
netifaces==0.11.0
os-service-types==1.7.0
oslo.cache==3.5.0
oslo.config==9.2.0
oslo.context==5.2.0
oslo.i18n==6.1.0
oslo.log==5.3.0
oslo.middleware==5.2.0
oslo.policy==4.2.1
oslo.serialization==5.2.0
oslo.utils==6.2.1
packaging==23.1
Paste==3.5.2
PasteDeploy==3.0.1
pbr==5.11.1
pycadf==3.1.1
pyinotify==0.9.6
PyMySQL==1.0.3
pyparsing==3.0.9
python-dateutil==2.8.2
python-keystoneclient==5.2.0
pytz==2023.3
PyYAML==6.0
requests==2.28.2
rfc3986==2.0.0
setuptools==65.5.0
six==1.16.0
statsd==4.0.1
stevedore==5.1.0
tzdata==2023.3
urllib3==1.26.15
WebOb==1.8.7
wrapt==1.15.0
REQ
}

# What must import in each venv.
import_check() {
  case "$1" in
    log-api) echo 'import monasca_log_api.app.api, falcon, confluent_kafka, gunicorn, paste.deploy; assert falcon.__version__ == "2.0.0"' ;;
    events-api) echo 'import monasca_events_api.app.api, falcon, confluent_kafka, gunicorn, paste.deploy; assert falcon.__version__ == "3.1.1"' ;;
  esac
}

venvs=${INGEST_PEERS_VENVS:-$dir}
venv_of() { echo "$venvs/venv-$1"; }
requirements_hash() { "${1//-/_}_requirements" | sha256sum | cut -c1-16; }

venv_ready() {
  local peer=$1 venv
  venv=$(venv_of "$peer")
  [ "$(cat "$venv/.ingest-peers-ready" 2>/dev/null)" = "$(requirements_hash "$peer")" ] \
    && "$venv/bin/python" -c "$(import_check "$peer")" 2>/dev/null
}

# Create one venv (called under the lock). Output in $venv.pip.log.
create_venv() {
  local peer=$1 venv python
  venv=$(venv_of "$peer")
  python=${INGEST_PEERS_PYTHON:-python3}
  rm -rf "$venv"
  {
    "$python" -m venv "$venv" \
      && "${peer//-/_}_requirements" > "$venv/requirements.txt" \
      && "$venv/bin/python" -m pip install --disable-pip-version-check --no-input \
           -r "$venv/requirements.txt" \
      && "$venv/bin/python" -c "$(import_check "$peer")"
  } >"$venv.pip.log" 2>&1 || return 1
  requirements_hash "$peer" > "$venv/.ingest-peers-ready"
}

# Create the missing venvs, both at once, under a lock (tests may start
# peers in parallel with a shared INGEST_PEERS_VENVS).
make_venvs() {
  local missing=() peer pids=() failed=""
  for peer in "${peers[@]}"; do venv_ready "$peer" || missing+=("$peer"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  command -v "${INGEST_PEERS_PYTHON:-python3}" >/dev/null \
    || die "${INGEST_PEERS_PYTHON:-python3} (3.11, with the venv module) is needed for the original ingest APIs"
  mkdir -p "$venvs"
  exec 9>"$venvs/venvs.lock"
  flock 9
  missing=()
  for peer in "${peers[@]}"; do venv_ready "$peer" || missing+=("$peer"); done
  for peer in "${missing[@]}"; do
    echo "$name: creating $(venv_of "$peer") (pip output in $(venv_of "$peer").pip.log)" >&2
    create_venv "$peer" &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || failed="$failed ${missing[$i]}"
  done
  exec 9>&-
  if [ -n "$failed" ]; then
    for peer in $failed; do
      echo "$name: creating the $peer venv failed; the end of $(venv_of "$peer").pip.log:" >&2
      tail -25 "$(venv_of "$peer").pip.log" >&2 || true
    done
    die "could not create the venv(s):$failed"
  fi
}

# The original's paste file with keystonemiddleware's auth_token replaced.
write_paste() {
  local peer=$1 tokens=$2 venv original
  venv=$(venv_of "$peer")
  case "$peer" in
    log-api) original=$("$venv/bin/python" -c 'import sys; print(sys.prefix + "/etc/monasca/log-api-paste.ini")') ;;
    events-api) original=$("$venv/bin/python" -c 'import os, monasca_events_api as m; print(os.path.join(os.path.dirname(os.path.dirname(m.__file__)), "etc/monasca/events-api-paste.ini"))') ;;
  esac
  [ -f "$original" ] || die "the $peer venv has no $original"
  local line='paste.filter_factory = keystonemiddleware.auth_token:filter_factory'
  grep -qx "$line" "$original" || die "$original has no '$line'"
  {
    echo "# $original, with keystonemiddleware's auth_token replaced by a stub (ingest_peers.py)"
    awk -v line="$line" -v tokens="$tokens" '
      $0 == line { print "paste.filter_factory = ingest_peers:auth_filter_factory"; print "tokens_file = " tokens; next }
      { print }' "$original"
  } > "$dir/$peer-paste.ini"
}

# oslo.config substitutes $name in values: write a literal $ as $$.
ini_value() { printf '%s' "${1//\$/\$\$}"; }

# `topics = X` lines (MultiStrOpt) for a comma-separated list.
topic_lines() {
  local list=$1 topic
  IFS=',' read -r -a list <<<"$list"
  for topic in "${list[@]}"; do
    topic=${topic// /}
    [[ $topic =~ ^[A-Za-z0-9._-]+$ ]] || die "invalid Kafka topic name '$topic'"
    echo "topics = $topic"
  done
}

write_configs() {
  local kafka=$1 log_topics=$2 events_topics=$3 region=$4
  {
    echo "# monasca-log-api 2.11.0: only what has no default, the topics and the region"
    if [ -n "$region" ]; then printf '[service]\nregion = %s\n\n' "$(ini_value "$region")"; fi
    printf '[log_publisher]\nkafka_url = %s\n' "$kafka"
    topic_lines "$log_topics"
    printf '\n[kafka_healthcheck]\nkafka_url = %s\nkafka_topics = %s\n' "$kafka" "${log_topics// /}"
  } > "$dir/log-api.conf"
  {
    echo "# monasca-events-api 8.0.0: only the broker and the topics"
    printf '[events_publisher]\nkafka_url = %s\n' "$kafka"
    topic_lines "$events_topics"
  } > "$dir/events-api.conf"
}

# The pid (= process group id) of a gunicorn master, or nothing.
master_pid() { cat "$dir/$1.pid" 2>/dev/null || true; }
# Is a process of the group (= session) still alive? Zombies do not count
# (an orphaned master stays one until init reaps it).
group_alive() { ps -o stat= -g "$1" 2>/dev/null | grep -qv '^Z'; }
running() { local pid; pid=$(master_pid "$1"); [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

start_server() {
  local peer=$1 port=$2 venv
  venv=$(venv_of "$peer")
  : > "$dir/$peer.log"
  # setsid: the master leads a new process group (pgid = its pid) that its
  # workers inherit, so `stop` can end them all.
  (cd "$dir" && exec env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY -u all_proxy -u ALL_PROXY \
      INGEST_PEER_APP="$peer" INGEST_PEER_PASTE="$dir/$peer-paste.ini" INGEST_PEER_CONF="$dir/$peer.conf" \
      PYTHONUNBUFFERED=1 nohup setsid "$venv/bin/gunicorn" \
      --pythonpath "$dir" --chdir "$dir" --workers "$workers" --worker-class sync \
      --bind "127.0.0.1:$port" --timeout 120 --graceful-timeout 10 \
      --access-logfile - --error-logfile - ingest_peers:application \
      </dev/null >>"$dir/$peer.log" 2>&1) &
  echo $! > "$dir/$peer.pid"
}

# The port gunicorn listens on (it binds port 0 to a free one), or nothing.
listening_port() {
  sed -n 's|.*Listening at: http://127\.0\.0\.1:\([0-9][0-9]*\) .*|\1|p' "$dir/$1.log" | tail -1
}

# GET / (the versions app: no token, no Kafka) answers 200.
answers() {
  local url=$1
  "$(venv_of log-api)/bin/python" - "$url" <<'PY' 2>/dev/null
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
sys.exit(0 if opener.open(sys.argv[1] + "/", timeout=5).status == 200 else 1)
PY
}

# Every worker loaded the app, the master listens, and `GET /` answers.
server_up() {
  local peer=$1 port loaded
  port=$(listening_port "$peer")
  [ -n "$port" ] || return 1
  loaded=$(grep -c "^ingest_peers: $peer app loaded in worker" "$dir/$peer.log" || true)
  [ "$loaded" -ge "$workers" ] || return 1
  answers "http://127.0.0.1:$port"
}

wait_server() {
  local peer=$1 pid
  pid=$(master_pid "$peer")
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null \
      || die "$peer exited during start-up; the end of $dir/$peer.log:"$'\n'"$(tail -30 "$dir/$peer.log")"
    grep -q 'Worker failed to boot\|Exception in worker process' "$dir/$peer.log" \
      && die "a $peer worker failed to boot; the end of $dir/$peer.log:"$'\n'"$(tail -40 "$dir/$peer.log")"
    if server_up "$peer"; then
      echo "http://127.0.0.1:$(listening_port "$peer")" > "$dir/$peer.url"
      return 0
    fi
    sleep 0.2
  done
  die "$peer did not come up in 120 s; the end of $dir/$peer.log:"$'\n'"$(tail -30 "$dir/$peer.log")"
}

# SIGQUIT to the master (gunicorn's quick shutdown: the workers exit at
# once; SIGTERM makes it wait seconds for idle sync workers), SIGKILL to
# whatever of its process group survives 15 s.
stop_server() {
  local peer=$1 pid
  pid=$(master_pid "$peer")
  [ -n "$pid" ] || return 0
  if group_alive "$pid"; then
    kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 1 75); do
      group_alive "$pid" || break
      sleep 0.2
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 25); do
      group_alive "$pid" || break
      sleep 0.2
    done
  fi
  rm -f "$dir/$peer.pid" "$dir/$peer.url"
}

stop() {
  local peer
  for peer in "${peers[@]}"; do stop_server "$peer"; done
  rm -f "$dir/peers.state"
}

print_urls() {
  local peer
  for peer in "${peers[@]}"; do echo "$peer $(cat "$dir/$peer.url")"; done
}

start() {
  [ $# -eq 2 ] || die "$usage"
  local kafka=$1 tokens=$2 log_topics=${LOG_API_TOPIC:-logs} events_topics=${EVENTS_API_TOPIC:-monevents}
  local region=${LOG_API_REGION:-} state peer
  [[ $kafka =~ ^[A-Za-z0-9._:,-]+$ ]] || die "KAFKA_BOOTSTRAP must look like HOST:PORT[,HOST:PORT...], not '$kafka'"
  [ -f "$tokens" ] || die "no such tokens file: $tokens"
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert isinstance(d, list) and all(isinstance(e, dict) and isinstance(e.get("token"), str) for e in d)' "$tokens" 2>/dev/null \
    || die "$tokens must hold a JSON list of {\"token\": \"...\", \"project_id\": \"...\", \"roles\": [...], \"user_id\": \"...\"}"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  tokens=$(cd "$(dirname "$tokens")" && pwd)/$(basename "$tokens")
  state=$(printf '%s\n' "$kafka" "$tokens" "$log_topics" "$events_topics" "$region" \
    "${LOG_API_PORT:-0}" "${EVENTS_API_PORT:-0}" "${INGEST_PEERS_MESSAGE_TIMEOUT_MS:-}" "$venvs" \
    "$(sha256sum "$here/ingest_peers.py" | cut -c1-16)")

  # Idempotent: the same start while both run and answer just prints them.
  if [ "$(cat "$dir/peers.state" 2>/dev/null)" = "$state" ] && running log-api && running events-api \
      && answers "$(cat "$dir/log-api.url")" && answers "$(cat "$dir/events-api.url")"; then
    print_urls
    return 0
  fi
  stop

  make_venvs
  cp "$here/ingest_peers.py" "$dir/ingest_peers.py"
  for peer in "${peers[@]}"; do write_paste "$peer" "$tokens"; done
  write_configs "$kafka" "$log_topics" "$events_topics" "$region"

  trap 'stop' EXIT
  start_server log-api "${LOG_API_PORT:-0}"
  start_server events-api "${EVENTS_API_PORT:-0}"
  for peer in "${peers[@]}"; do
    local pgid=""
    for _ in $(seq 1 100); do
      pgid=$(ps -o pgid= -p "$(master_pid "$peer")" 2>/dev/null | tr -d ' ') || true
      [ "$pgid" = "$(master_pid "$peer")" ] && break
      sleep 0.05
    done
    [ "$pgid" = "$(master_pid "$peer")" ] || die "the $peer gunicorn did not get its own process group"
  done
  for peer in "${peers[@]}"; do wait_server "$peer"; done
  trap - EXIT
  echo "$state" > "$dir/peers.state"
  if [ -n "${INGEST_PEERS_OWNER_PID:-}" ]; then
    nohup bash -c "while kill -0 $INGEST_PEERS_OWNER_PID 2>/dev/null; do sleep 1; done; '$here/ingest_peers.sh' stop '$dir'" \
      </dev/null >/dev/null 2>&1 &
  fi
  echo "$name: monasca-log-api 2.11.0 and monasca-events-api 8.0.0 publish to $kafka" \
    "(log-api topics: $log_topics; events-api topics: $events_topics; config and logs in $dir)" >&2
  print_urls
}

case "$command" in
  start) start "$@" ;;
  stop) stop ;;
  status) running log-api && running events-api \
            && answers "$(cat "$dir/log-api.url")" && answers "$(cat "$dir/events-api.url")" ;;
  *) die "$usage" ;;
esac
