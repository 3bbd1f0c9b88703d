#!/usr/bin/env bash
# A real PostgreSQL for development, CI and tests, on 127.0.0.1 only, holding
# the Monasca configuration database `mon` that monasca-notification reads
# (with `[database] repo_driver = postgresql`).
#
#   scripts/postgres.sh start [DIR]   install Debian's postgresql package if no
#                                     /usr/lib/postgresql/*/bin/initdb exists,
#                                     initialise a fresh cluster in DIR, start
#                                     it, create role notification/password and
#                                     database `mon` (owned by it), load
#                                     tests/fixtures/notification/schema.postgresql.sql;
#                                     prints postgresql://notification:password@127.0.0.1:<port>/mon
#   scripts/postgres.sh stop [DIR]    stop the server started in DIR
#   scripts/postgres.sh status [DIR]  exit 0 when `notification` can query `mon`
#
# DIR defaults to target/postgres. POSTGRES_PORT picks the port (default: a
# free one). With POSTGRES_OWNER_PID set, the server is stopped (and DIR
# removed) when that process exits. PostgreSQL refuses to run as root: run as
# root, this script runs the server as the `postgres` system user (created by
# Debian's package; else a `monasca-pg` system user is created) and gives it
# DIR. The superuser `postgres` connects without a password through the
# socket in DIR:  psql -h DIR -p <port> -U postgres mon
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
command=${1:-}
name=postgres.sh
# shellcheck source=lib/servers.sh
. "$here/lib/servers.sh"
dir=${2:-$root/target/postgres}
schema=$root/tests/fixtures/notification/schema.postgresql.sql

# The bin directory of the newest PostgreSQL server installed by Debian.
server_bin() {
  local bin
  bin=$(for b in /usr/lib/postgresql/*/bin; do
          [ -x "$b/initdb" ] && [ -x "$b/postgres" ] && echo "$b"
        done | sort -V | tail -1)
  [ -n "$bin" ] && echo "$bin"
}

install() {
  if server_bin >/dev/null && command -v psql >/dev/null; then return; fi
  apt_install postgresql postgresql postgresql-client
}

# Sets `run_as` to the command prefix that runs a program as the server's
# user: nothing for an ordinary user, setpriv to an unprivileged one for root.
pick_user() {
  run_as=()
  [ "$(id -u)" = 0 ] || return 0
  server_user=postgres
  if ! getent passwd "$server_user" >/dev/null; then
    server_user=monasca-pg
    getent passwd "$server_user" >/dev/null \
      || useradd --system --user-group --no-create-home --home-dir /nonexistent \
           --shell /usr/sbin/nologin "$server_user" \
      || die "could not create the system user $server_user to run PostgreSQL as"
  fi
  run_as=(setpriv "--reuid=$server_user" "--regid=$(id -g "$server_user")" --init-groups --)
}

superuser_psql() {
  psql -X -q -h "$dir" -p "$(cat "$dir/port")" -U postgres -v ON_ERROR_STOP=1 "$@"
}

answers_superuser() { superuser_psql -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; }

answers_notification() {
  local url
  url=$(cat "$dir/url" 2>/dev/null) || return 1
  psql -X -q "$url?connect_timeout=2" -Atc 'SELECT 1' >/dev/null 2>&1
}

start() {
  install
  if [ -f "$dir/postgres.pid" ] && kill -0 "$(cat "$dir/postgres.pid")" 2>/dev/null; then
    die "a server is already running from $dir (pid $(cat "$dir/postgres.pid")); stop it first"
  fi
  local bin
  bin=$(server_bin) || die "no PostgreSQL server under /usr/lib/postgresql/*/bin"
  rm -rf "$dir"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # The socket, DIR/.s.PGSQL.<port>, needs a path of at most 107 bytes.
  [ ${#dir} -le 90 ] || die "DIR is too long for a Unix socket path (${#dir} > 90 characters): $dir"
  local port=${POSTGRES_PORT:-$(free_port)}
  echo "$port" > "$dir/port"
  echo "postgresql://notification:password@127.0.0.1:$port/mon" > "$dir/url"
  pick_user
  if [ "${#run_as[@]}" -gt 0 ]; then
    chown -R "$server_user:" "$dir"
    "${run_as[@]}" test -w "$dir" \
      || die "user $server_user cannot write to $dir (a parent directory is closed to it); use a DIR under /tmp"
  fi
  (cd "$dir" && "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=scram-sha-256 --no-sync --no-instructions) >"$dir/initdb.log" 2>&1 \
    || die "initdb failed: $(tail -20 "$dir/initdb.log")"
  cat >> "$dir/data/postgresql.conf" <<CONF

# scripts/postgres.sh: loopback only, sockets in DIR, durability off (tests).
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 100
logging_collector = off
log_min_messages = warning
CONF
  (cd "$dir" && exec nohup "${run_as[@]}" "$bin/postgres" -D "$dir/data" </dev/null >>"$dir/postgres.log" 2>&1) &
  echo $! > "$dir/postgres.pid"
  wait_until_up postgres "$dir/postgres.pid" "$dir/postgres.log" 120 0.25 answers_superuser
  superuser_psql -d postgres >"$dir/setup.log" 2>&1 <<SQL || { stop; die "creating database mon failed: $(tail -20 "$dir/setup.log")"; }
CREATE ROLE notification LOGIN PASSWORD 'password';
CREATE DATABASE mon OWNER notification ENCODING 'UTF8' TEMPLATE template0;
SQL
  psql -X -q -v ON_ERROR_STOP=1 "$(cat "$dir/url")" -f "$schema" >>"$dir/setup.log" 2>&1 \
    || { stop; die "loading $schema failed: $(tail -20 "$dir/setup.log")"; }
  if [ -n "${POSTGRES_OWNER_PID:-}" ]; then
    stop_with_owner "$0" "$dir" "$POSTGRES_OWNER_PID"
  fi
  echo "postgres.sh: $("$bin/postgres" --version) answers on 127.0.0.1:$port (data and log in $dir)" >&2
  cat "$dir/url"
}

# SIGINT is PostgreSQL's fast shutdown (it does not wait for clients to
# disconnect, SIGTERM does); then SIGTERM/SIGKILL if it hangs.
stop() {
  local pid
  if [ -f "$dir/postgres.pid" ]; then
    pid=$(cat "$dir/postgres.pid")
    if kill -INT "$pid" 2>/dev/null; then
      for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
    fi
  fi
  stop_pidfile "$dir/postgres.pid"
}

case "$command" in
  start) start ;;
  stop) stop ;;
  status) answers_notification ;;
  *) die "usage: scripts/postgres.sh start|stop|status [DIR]" ;;
esac
