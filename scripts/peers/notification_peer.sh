#!/usr/bin/env bash
# The original monasca-notification 9.0.0 (PyPI, Python) as a benchmark peer:
# it consumes alarm transitions from a real Kafka broker, looks their
# notification methods up in a real MariaDB (scripts/mariadb.sh) and sends
# the notifications (webhook, email, pagerduty) for real.
#
#   scripts/peers/notification_peer.sh start DIR --kafka HOST:PORT --mysql URL
#         --group G --alarm-topic T [--processes N] [--partitions P]
#         [--notification-topic X] [--ttl S]
#       create the venv target/peers/notification-venv with
#       monasca-notification[jira_plugin]==9.0.0 if missing, write
#       DIR/notification.conf and DIR/logging.ini, create the missing topics,
#       start monasca-notification in its own process group, wait until all
#       its Kafka consumers joined group G and own every partition; prints
#       the pid of the main process (also in DIR/peer.pid)
#   scripts/peers/notification_peer.sh stop DIR
#       stop it and every process it started (the whole process group)
#   scripts/peers/notification_peer.sh status DIR
#       exit 0 when the main process runs
#
# URL is mysql://USER:PASSWORD@HOST:PORT/DB (what scripts/mariadb.sh prints).
# N is [notification_processor] number (default 4, the original's default):
# N NotificationEngine processes consume T, plus one RetryEngine
# (T-retry) and one PeriodicEngine (T-60-seconds), all in group G.
# Kafka gives each partition to one consumer of a group, so T needs at least
# N partitions for N engines to share the work: missing topics are created,
# T with P partitions (default N), the others with 1; an existing T is
# left as it is (with a warning when it has fewer than N partitions).
# Sent notifications go to X (default T-notifications), failed ones to
# T-retry, period-60 ones to T-60-seconds. S is [alarm_processor] ttl
# (default 14400: transitions older than S seconds are skipped).
# Each engine commits its offset after every message; a Kafka 4 broker
# answers one consumer's commits at most ~175/s (group.coordinator.append.linger.ms
# = 5 by default), so one busy engine builds a commit backlog that can exceed
# its 10 s session timeout (rebalance, redelivery): use a fresh group per run.
# The log (WARNING and up, all processes) is DIR/notification.log, stdout
# and stderr are in DIR/peer.out.
#
# With NOTIFICATION_PEER_OWNER_PID set, the peer is stopped (and DIR
# removed) when that process exits. NOTIFICATION_PEER_VENV overrides the venv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
command=${1:-}
name=notification_peer.sh
# shellcheck source=../lib/servers.sh
. "$root/scripts/lib/servers.sh"
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || die "usage: scripts/peers/notification_peer.sh start|stop|status DIR [OPTIONS]"
dir=$1
shift
venv=${NOTIFICATION_PEER_VENV:-$root/target/peers/notification-venv}
python=$venv/bin/python
package='monasca-notification[jira_plugin]==9.0.0'

# Create the venv once (under a lock: benchmarks may start peers in parallel).
# `[jira_plugin]` is needed: without Jinja2 (declared only in that extra) the
# original cannot even load its configuration.
make_venv() {
  if "$python" -c 'import monasca_notification.main, jinja2, confluent_kafka, pymysql' 2>/dev/null; then
    return
  fi
  command -v python3 >/dev/null || die "python3 (3.8 or later, with the venv module) is needed for monasca-notification"
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if ! "$python" -c 'import monasca_notification.main, jinja2, confluent_kafka, pymysql' 2>/dev/null; then
    echo "$name: creating $venv with $package" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$python" -m pip install -q --disable-pip-version-check "$package" >&2 \
      || die "pip install $package failed (see the pip output above)"
  fi
  exec 9>&-
}

# The pid (= process group id) of the main process, or nothing.
main_pid() { cat "$dir/peer.pid" 2>/dev/null || true; }

# Is any process of the group still alive?
group_alive() { kill -0 -- "-$1" 2>/dev/null; }

running() {
  local pid
  pid=$(main_pid)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Exit 0 when the main process and all its children (N engines, the retry
# engine, the periodic engine) run: when one dies, main ends them all.
all_processes_up() {
  local pid
  pid=$(main_pid)
  [ "$(ps -o stat= -g "$pid" 2>/dev/null | grep -vc '^Z')" -eq $((expected_members + 1)) ]
}

# The start-up check: all processes up and all consumers in the group.
ready() { all_processes_up && joined; }

# Exit 0 when group $group is stable with all expected members and every
# partition of the consumed topics assigned.
joined() {
  "$python" - "$kafka" "$group" "$expected_members" "$alarm_topic" "$retry_topic" "$periodic_topic" \
    >/dev/null 2>&1 <<'PY'
import sys
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient
bootstrap, group, members, *topics = sys.argv[1:]
admin = AdminClient({"bootstrap.servers": bootstrap})
description = admin.describe_consumer_groups([group], request_timeout=5)[group].result(timeout=10)
if description.state != ConsumerGroupState.STABLE or len(description.members) != int(members):
    sys.exit(1)
assigned = {(p.topic, p.partition) for m in description.members
            for p in (m.assignment.topic_partitions if m.assignment else [])}
metadata = admin.list_topics(timeout=10).topics
wanted = {(t, p) for t in topics for p in metadata[t].partitions}
sys.exit(0 if wanted <= assigned else 1)
PY
}

# Create the missing topics (name:partitions ...) and wait until each has a leader.
create_topics() {
  "$python" - "$kafka" "$processes" "$@" <<'PY' >&2
import sys, time
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, processes, *specs = sys.argv[1:]
specs = [s.rsplit(":", 1) for s in specs]
admin = AdminClient({"bootstrap.servers": bootstrap})
existing = admin.list_topics(timeout=10).topics
new = [NewTopic(n, num_partitions=int(p), replication_factor=1) for n, p in specs if n not in existing]
if new:
    for topic, future in admin.create_topics(new, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                sys.exit(f"notification_peer.sh: creating topic {topic} failed: {e}")
alarm_topic = specs[0][0]
for _ in range(60):
    topics = admin.list_topics(timeout=10).topics
    if all(n in topics and topics[n].error is None and topics[n].partitions
           and all(p.leader >= 0 for p in topics[n].partitions.values()) for n, _ in specs):
        break
    time.sleep(0.5)
else:
    sys.exit("notification_peer.sh: the topics have no leader after 30 s")
count = len(topics[alarm_topic].partitions)
if count < int(processes):
    print(f"notification_peer.sh: warning: {alarm_topic} has {count} partitions, "
          f"{int(processes) - count} of the {processes} engines will stay idle", file=sys.stderr)
PY
}

# oslo.config substitutes $name in values: write a literal $ as $$.
ini_value() { printf '%s' "${1//\$/\$\$}"; }

start() {
  local mysql="" notification_topic="" ttl=14400 partitions=""
  kafka="" group="" alarm_topic="" processes=4
  while [ $# -gt 0 ]; do
    case "$1" in
      --kafka) kafka=${2:?}; shift 2 ;;
      --mysql) mysql=${2:?}; shift 2 ;;
      --group) group=${2:?}; shift 2 ;;
      --alarm-topic) alarm_topic=${2:?}; shift 2 ;;
      --processes) processes=${2:?}; shift 2 ;;
      --partitions) partitions=${2:?}; shift 2 ;;
      --notification-topic) notification_topic=${2:?}; shift 2 ;;
      --ttl) ttl=${2:?}; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -n "$kafka" ] && [ -n "$mysql" ] && [ -n "$group" ] && [ -n "$alarm_topic" ] \
    || die "start needs --kafka HOST:PORT --mysql URL --group G --alarm-topic T"
  [[ $processes =~ ^[1-9][0-9]*$ ]] || die "--processes must be a positive integer"
  partitions=${partitions:-$processes}
  notification_topic=${notification_topic:-$alarm_topic-notifications}
  retry_topic=$alarm_topic-retry
  periodic_topic=$alarm_topic-60-seconds
  # N engines + 1 retry engine + 1 periodic engine (one periodic key).
  expected_members=$((processes + 2))

  local db_user db_password db_host db_port db_name
  IFS=$'\t' read -r db_user db_password db_host db_port db_name < <(python3 - "$mysql" <<'PY'
import sys
from urllib.parse import urlsplit, unquote
u = urlsplit(sys.argv[1])
if u.scheme not in ("mysql", "mariadb") or not u.hostname:
    sys.exit(1)
print(unquote(u.username or "notification"), unquote(u.password or ""), u.hostname,
      u.port or 3306, u.path.lstrip("/") or "mon", sep="\t")
PY
) || die "--mysql must look like mysql://USER:PASSWORD@HOST:PORT/DB"

  make_venv
  if running; then die "a peer is already running from $dir (pid $(main_pid)); stop it first"; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)

  cat > "$dir/logging.ini" <<INI
[loggers]
keys = root

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers = file

[handler_file]
class = FileHandler
args = ('$dir/notification.log', 'a')
formatter = plain

[formatter_plain]
format = %(asctime)s %(process)d %(levelname)s %(name)s %(message)s
INI

  cat > "$dir/notification.conf" <<CONF
[DEFAULT]
debug = False
use_stderr = False
log_config_append = $dir/logging.ini

[kafka]
url = $kafka
group = $(ini_value "$group")
alarm_topic = $(ini_value "$alarm_topic")
notification_topic = $(ini_value "$notification_topic")
notification_retry_topic = $(ini_value "$retry_topic")
periodic = 60:$(ini_value "$periodic_topic")
legacy_kafka_client_enabled = False

[database]
repo_driver = mysql

[mysql]
host = $db_host
port = $db_port
user = $(ini_value "$db_user")
passwd = $(ini_value "$db_password")
db = $(ini_value "$db_name")

[notification_types]
enabled = webhook,email,pagerduty

[notification_processor]
number = $processes

[alarm_processor]
ttl = $ttl

[retry_engine]
interval = 30
max_attempts = 5

[statsd]
enable = False

[webhook_notifier]
timeout = 5

[pagerduty_notifier]
timeout = 5

[email_notifier]
server = 127.0.0.1
port = 25
timeout = 5
from_addr = monasca-notification@localhost
CONF

  create_topics "$alarm_topic:$partitions" "$retry_topic:1" "$periodic_topic:1" "$notification_topic:1" \
    || die "could not create the topics on $kafka"

  # setsid: the main process leads a new process group (pgid = its pid) that
  # its multiprocessing children inherit, so `stop` can end them all.
  # Proxy variables are dropped: webhooks go to loopback.
  (cd "$dir" && exec env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY \
      -u all_proxy -u ALL_PROXY nohup setsid "$venv/bin/monasca-notification" --config-file "$dir/notification.conf" \
      </dev/null >>"$dir/peer.out" 2>&1) &
  echo $! > "$dir/peer.pid"
  local pgid=""
  for _ in $(seq 1 100); do
    pgid=$(ps -o pgid= -p "$(main_pid)" 2>/dev/null | tr -d ' ') || true
    [ "$pgid" = "$(main_pid)" ] && break
    sleep 0.05
  done
  [ "$pgid" = "$(main_pid)" ] \
    || { kill "$(main_pid)" 2>/dev/null; die "monasca-notification did not get its own process group"; }
  wait_until_up monasca-notification "$dir/peer.pid" "$dir/peer.out" 240 0.5 ready
  # An engine that fails right after joining (database unreachable) takes all
  # processes down within a moment: look once more.
  sleep 0.5
  all_processes_up || { stop; die "monasca-notification exited during start-up: $(tail -20 "$dir/peer.out")"; }
  if [ -n "${NOTIFICATION_PEER_OWNER_PID:-}" ]; then
    stop_with_owner "$here/notification_peer.sh" "$dir" "$NOTIFICATION_PEER_OWNER_PID"
  fi
  echo "$name: monasca-notification 9.0.0 ($processes engines) consumes $alarm_topic in group $group" \
    "(config and log in $dir)" >&2
  main_pid
}

# SIGTERM to the group (the main process terminates its children, waits 2 s,
# then SIGKILLs the rest), then SIGKILL whatever survives 15 s.
stop() {
  local pid
  pid=$(main_pid)
  [ -n "$pid" ] || return 0
  if group_alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      group_alive "$pid" || break
      sleep 0.5
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 10); do
      group_alive "$pid" || break
      sleep 0.2
    done
  fi
  rm -f "$dir/peer.pid"
}

case "$command" in
  start) start "$@" ;;
  stop) stop ;;
  status) running ;;
  *) die "usage: scripts/peers/notification_peer.sh start|stop|status DIR [OPTIONS]" ;;
esac
