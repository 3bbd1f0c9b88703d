#!/usr/bin/env bash
# A real MariaDB for development, CI and tests, on 127.0.0.1 only, holding
# the Monasca configuration database `mon` that monasca-notification reads.
#
#   scripts/mariadb.sh start [DIR]   install Debian's mariadb-server and
#                                    mariadb-client packages if mariadbd is
#                                    missing, create a fresh data directory in
#                                    DIR, start the server, create database
#                                    `mon` and user notification/password, load
#                                    tests/fixtures/notification/schema.mysql.sql;
#                                    prints mysql://notification:password@127.0.0.1:<port>/mon
#   scripts/mariadb.sh stop [DIR]    stop the server started in DIR
#   scripts/mariadb.sh status [DIR]  exit 0 when `notification` can query `mon`
#
# DIR defaults to target/mariadb. MARIADB_PORT picks the port (default: a free
# one). With MARIADB_OWNER_PID set, the server is stopped (and DIR removed)
# when that process exits. The server also listens on DIR/mysqld.sock, where
# root connects without a password:
#   mariadb --socket=DIR/mysqld.sock -uroot mon
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
command=${1:-}
name=mariadb.sh
# shellcheck source=lib/servers.sh
. "$here/lib/servers.sh"
dir=${2:-$root/target/mariadb}
schema=$root/tests/fixtures/notification/schema.mysql.sql

# The first of the named programs on PATH or in /usr/sbin, /usr/bin.
find_program() {
  local p
  for p in "$@"; do
    if command -v "$p" >/dev/null 2>&1; then command -v "$p"; return 0; fi
    for d in /usr/sbin /usr/bin; do
      if [ -x "$d/$p" ]; then echo "$d/$p"; return 0; fi
    done
  done
  return 1
}

install() {
  if find_program mariadbd mysqld >/dev/null && find_program mariadb mysql >/dev/null \
     && find_program mariadb-install-db mysql_install_db >/dev/null; then
    return
  fi
  apt_install mariadb mariadb-server mariadb-client
}

# A client connected as root through the server's socket.
root_client() { "$(find_program mariadb mysql)" --no-defaults --socket="$dir/mysqld.sock" -uroot "$@"; }

answers_root() {
  root_client --connect-timeout=2 -N -e 'SELECT 1' >/dev/null 2>&1
}

answers_notification() {
  local port
  port=$(cat "$dir/port" 2>/dev/null) || return 1
  "$(find_program mariadb mysql)" --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" \
    --connect-timeout=2 -unotification -ppassword -N -e 'SELECT 1' mon >/dev/null 2>&1
}

start() {
  install
  if [ -f "$dir/mysqld.pid" ] && kill -0 "$(cat "$dir/mysqld.pid")" 2>/dev/null; then
    die "a server is already running from $dir (pid $(cat "$dir/mysqld.pid")); stop it first"
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # A Unix socket path holds at most 107 bytes.
  [ ${#dir} -le 90 ] || die "DIR is too long for a Unix socket path (${#dir} > 90 characters): $dir"
  local port=${MARIADB_PORT:-$(free_port)}
  local user=()
  # mariadbd refuses to run as root unless told to; as anyone else it runs as itself.
  if [ "$(id -u)" = 0 ]; then user=(--user=root); fi
  cat > "$dir/my.cnf" <<CNF
[mysqld]
datadir = $dir/data
socket = $dir/mysqld.sock
pid-file = $dir/mysqld.pid.server
log-error = $dir/mysqld.log
tmpdir = $dir
port = $port
bind-address = 127.0.0.1
skip-name-resolve
skip-log-bin
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
performance-schema = OFF
innodb-buffer-pool-size = 256M
innodb-log-file-size = 16M
innodb-flush-log-at-trx-commit = 2
innodb-doublewrite = 0
CNF
  echo "$port" > "$dir/port"
  echo "mysql://notification:password@127.0.0.1:$port/mon" > "$dir/url"
  "$(find_program mariadb-install-db mysql_install_db)" --defaults-file="$dir/my.cnf" "${user[@]}" \
      --auth-root-authentication-method=normal --skip-test-db >"$dir/install-db.log" 2>&1 \
    || die "mariadb-install-db failed: $(tail -20 "$dir/install-db.log")"
  nohup "$(find_program mariadbd mysqld)" --defaults-file="$dir/my.cnf" "${user[@]}" \
    </dev/null >>"$dir/mysqld.log" 2>&1 &
  echo $! > "$dir/mysqld.pid"
  wait_until_up mariadbd "$dir/mysqld.pid" "$dir/mysqld.log" 120 0.25 answers_root
  root_client >"$dir/setup.log" 2>&1 <<SQL || { stop; die "setting up database mon failed: $(tail -20 "$dir/setup.log")"; }
CREATE DATABASE mon CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'notification'@'127.0.0.1' IDENTIFIED BY 'password';
CREATE USER 'notification'@'localhost' IDENTIFIED BY 'password';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON mon.* TO 'notification'@'127.0.0.1';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON mon.* TO 'notification'@'localhost';
USE mon;
SOURCE $schema;
SQL
  answers_notification || { stop; die "user notification cannot query mon over TCP on 127.0.0.1:$port"; }
  if [ -n "${MARIADB_OWNER_PID:-}" ]; then
    stop_with_owner "$0" "$dir" "$MARIADB_OWNER_PID"
  fi
  echo "mariadb.sh: $("$(find_program mariadbd mysqld)" --version 2>/dev/null | head -1) answers on 127.0.0.1:$port (data and log in $dir)" >&2
  cat "$dir/url"
}

stop() { stop_pidfile "$dir/mysqld.pid"; }

case "$command" in
  start) start ;;
  stop) stop ;;
  status) answers_notification ;;
  *) die "usage: scripts/mariadb.sh start|stop|status [DIR]" ;;
esac
