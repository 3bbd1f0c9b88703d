#!/usr/bin/env bash
# A real InfluxDB 1.x for development, CI and tests, on 127.0.0.1 only.
#
#   scripts/influxdb.sh start [DIR]   install Debian's `influxdb` package if
#                                     influxd is missing, start a server with
#                                     its data in DIR (fresh each time), wait
#                                     for /ping; prints the URL on stdout
#   scripts/influxdb.sh stop [DIR]    stop the server started in DIR
#   scripts/influxdb.sh resume [DIR]  start the server of DIR again, same port
#                                     and data (after `stop`)
#   scripts/influxdb.sh status [DIR]  exit 0 when it answers /ping
#
# DIR defaults to target/influxdb. INFLUXDB_PORT picks the HTTP port (default:
# a free one). With INFLUXDB_OWNER_PID set, the server is stopped when that
# process exits (tests use it so that no server outlives them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
command=${1:-}
name=influxdb.sh
# shellcheck source=lib/servers.sh
. "$here/lib/servers.sh"
dir=${2:-$root/target/influxdb}



install() {
  if command -v influxd >/dev/null; then return; fi
  apt_install influxdb influxdb
}

answers_ping() {
  local url
  url=$(cat "$dir/url" 2>/dev/null) || return 1
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/ping")" = 204 ]
}

start() {
  install
  if [ -f "$dir/influxd.pid" ] && kill -0 "$(cat "$dir/influxd.pid")" 2>/dev/null; then
    die "a server is already running from $dir (pid $(cat "$dir/influxd.pid")); stop it first"
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  local port=${INFLUXDB_PORT:-$(free_port)}
  local rpc_port
  rpc_port=$(free_port)
  cat > "$dir/influxdb.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$rpc_port"
[meta]
  dir = "$dir/meta"
  logging-enabled = false
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:$port"
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[[udp]]
  enabled = false
CONF
  echo "http://127.0.0.1:$port" > "$dir/url"
  launch
}

resume() {
  [ -f "$dir/influxdb.conf" ] || die "no server was started in $dir"
  if [ -f "$dir/influxd.pid" ] && kill -0 "$(cat "$dir/influxd.pid")" 2>/dev/null; then
    die "the server of $dir is running (pid $(cat "$dir/influxd.pid"))"
  fi
  launch
}

# Start influxd on the configuration in $dir and wait for /ping.
launch() {
  nohup influxd -config "$dir/influxdb.conf" >>"$dir/influxd.log" 2>&1 &
  echo $! > "$dir/influxd.pid"
  wait_until_up influxd "$dir/influxd.pid" "$dir/influxd.log" 120 0.5 answers_ping
  if [ -n "${INFLUXDB_OWNER_PID:-}" ]; then
    stop_with_owner "$0" "$dir" "$INFLUXDB_OWNER_PID"
  fi
  echo "influxdb.sh: $(influxd version 2>/dev/null | head -1) answers on $(cat "$dir/url") (data and log in $dir)" >&2
  cat "$dir/url"
}

stop() { stop_pidfile "$dir/influxd.pid"; }

case "$command" in
  start) start ;;
  resume) resume ;;
  stop) stop ;;
  status) answers_ping ;;
  *) die "usage: scripts/influxdb.sh start|stop|resume|status [DIR]" ;;
esac
