#!/usr/bin/env bash
# A real SMTP server for tests (aiosmtpd, scripts/peers/smtp_server.py), on
# 127.0.0.1 only. It stores every accepted message as DIR/mail/<n>.eml with
# its envelope (MAIL FROM, RCPT TO, AUTH user, ...) in DIR/mail/<n>.json.
#
#   scripts/smtp.sh start [DIR] [OPTIONS]  create the Python venv
#                                          target/peers/smtp-venv with aiosmtpd
#                                          if missing, empty DIR, start the
#                                          server; prints smtp://127.0.0.1:<port>
#   scripts/smtp.sh stop [DIR]             stop the server started in DIR
#   scripts/smtp.sh status [DIR]           exit 0 when it answers NOOP
#
# OPTIONS (passed to smtp_server.py):
#   --auth-user U --auth-password P   require AUTH PLAIN or LOGIN (no TLS)
#   --fail-first N                    answer the first N messages with 451
#
# DIR defaults to target/smtp. SMTP_PORT picks the port (default: a free one).
# With SMTP_OWNER_PID set, the server is stopped (and DIR removed) when that
# process exits (tests use it so that no server outlives them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
command=${1:-}
name=smtp.sh
# shellcheck source=lib/servers.sh
. "$here/lib/servers.sh"
[ $# -gt 0 ] && shift
dir=$root/target/smtp
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then dir=$1; shift; fi
options=("$@")
venv=$root/target/peers/smtp-venv
python=$venv/bin/python

# Create the venv once (under a lock: tests start servers in parallel).
make_venv() {
  [ -f "$venv/.complete" ] && return
  command -v python3 >/dev/null || die "python3 (3.8 or later, with the venv module) is needed for the SMTP server"
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if [ ! -f "$venv/.complete" ]; then
    echo "smtp.sh: creating $venv with aiosmtpd" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$python" -m pip install -q --disable-pip-version-check 'aiosmtpd>=1.4,<2' >&2 \
      || die "pip install aiosmtpd failed (see the pip output above)"
    touch "$venv/.complete"
  fi
  exec 9>&-
}

answers_noop() {
  local port
  port=$(cat "$dir/port" 2>/dev/null) || return 1
  "$python" - "$port" >/dev/null 2>&1 <<'PY'
import smtplib, sys
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=2) as s:
    sys.exit(0 if s.noop()[0] == 250 else 1)
PY
}

is_ready() { [ -f "$dir/ready" ]; }

start() {
  make_venv
  if [ -f "$dir/smtp.pid" ] && kill -0 "$(cat "$dir/smtp.pid")" 2>/dev/null; then
    die "a server is already running from $dir (pid $(cat "$dir/smtp.pid")); stop it first"
  fi
  rm -rf "$dir"
  mkdir -p "$dir/mail"
  dir=$(cd "$dir" && pwd)
  local port=${SMTP_PORT:-$(free_port)}
  echo "$port" > "$dir/port"
  echo "smtp://127.0.0.1:$port" > "$dir/url"
  nohup "$python" "$here/peers/smtp_server.py" --host 127.0.0.1 --port "$port" \
      --mail-dir "$dir/mail" --ready-file "$dir/ready" ${options[@]+"${options[@]}"} \
      </dev/null >>"$dir/smtp.log" 2>&1 &
  echo $! > "$dir/smtp.pid"
  wait_until_up smtp_server.py "$dir/smtp.pid" "$dir/smtp.log" 200 0.05 is_ready
  if [ -n "${SMTP_OWNER_PID:-}" ]; then
    stop_with_owner "$0" "$dir" "$SMTP_OWNER_PID"
  fi
  echo "smtp.sh: SMTP server ${options[*]+(${options[*]}) }answers on 127.0.0.1:$port (mail in $dir/mail)" >&2
  cat "$dir/url"
}

stop() { stop_pidfile "$dir/smtp.pid"; }

case "$command" in
  start) start ;;
  stop) stop ;;
  status) [ -x "$python" ] && answers_noop ;;
  *) die "usage: scripts/smtp.sh start|stop|status [DIR] [--auth-user U --auth-password P] [--fail-first N]" ;;
esac
