# Helpers shared by the scripts that start test servers (kafka.sh,
# influxdb.sh, mariadb.sh, postgres.sh, smtp.sh). Source it; it expects
# `$name` (the script's name, for messages) to be set.

die() { echo "$name: $*" >&2; exit 1; }

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# stop_pidfile FILE: stop the process whose pid FILE holds (SIGTERM, then
# SIGKILL after 30 s) and remove FILE.
stop_pidfile() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# stop_with_owner SCRIPT DIR OWNER_PID: when OWNER_PID exits, run
# `SCRIPT stop DIR` and remove DIR (so that no server outlives its tests).
stop_with_owner() {
  local script=$1 dir=$2 owner=$3
  nohup bash -c "while kill -0 $owner 2>/dev/null; do sleep 1; done; '$script' stop '$dir' && rm -rf '$dir'" \
    </dev/null >/dev/null 2>&1 &
}

# wait_until_up WHAT PIDFILE LOG TRIES INTERVAL CHECK...: wait until the
# command CHECK succeeds, failing (with the log's tail) when the process of
# PIDFILE exits or after TRIES tries INTERVAL seconds apart (then `stop`).
wait_until_up() {
  local what=$1 pidfile=$2 log=$3 tries=$4 interval=$5
  shift 5
  for _ in $(seq 1 "$tries"); do
    if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      die "$what exited during start-up: $(tail -20 "$log")"
    fi
    if "$@"; then
      return 0
    fi
    sleep "$interval"
  done
  stop
  die "$what did not come up in time: $(tail -20 "$log")"
}

# apt_install SERVICE PACKAGE...: install Debian packages (as root, or with
# sudo), then stop and disable the system-wide SERVICE a package may start:
# our servers run from their own directories on loopback.
apt_install() {
  local service=$1 sudo=""
  shift
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "installing Debian's $* needs root or sudo"
    sudo="sudo"
  fi
  echo "$name: installing Debian's $*" >&2
  $sudo apt-get update -q >&2 || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >&2 \
    || die "could not install Debian's $* (see the apt-get output above)"
  $sudo service "$service" stop >/dev/null 2>&1 || true
  $sudo systemctl disable "$service" >/dev/null 2>&1 || true
  $sudo update-rc.d "$service" disable >/dev/null 2>&1 || true
}
