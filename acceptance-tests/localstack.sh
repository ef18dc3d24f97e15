#!/usr/bin/env bash
# localstack.sh start|stop|status — runs LocalStack (installed by setup.sh) as a plain
# host process, without Docker, serving EC2/STS/IAM on http://127.0.0.1:4566 for the
# acceptance tests. State, pidfile and log live under $PAVED_CACHE/localstack/.
set -euo pipefail

PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
LSVENV="$PAVED_CACHE/lsvenv"
LSDIR="$PAVED_CACHE/localstack"
PIDFILE="$LSDIR/localstack.pid"
LOGFILE="$LSDIR/localstack.log"
PORT="${PAVED_LOCALSTACK_PORT:-4566}"
ENDPOINT="http://127.0.0.1:$PORT"
START_TIMEOUT="${PAVED_LOCALSTACK_TIMEOUT:-120}"

die() { echo "localstack.sh: $*" >&2; exit 1; }

# Prints 0 when /_localstack/health reports ec2 available/running, 1 otherwise.
healthy() {
  "$LSVENV/bin/python" - "$ENDPOINT/_localstack/health" <<'EOF' 2>/dev/null
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        h = json.load(r)
except Exception:
    sys.exit(1)
sys.exit(0 if h.get("services", {}).get("ec2") in ("available", "running") else 1)
EOF
}

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: it must still be our localstack process.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "localstack.runtime.main" || return 1
  echo "$pid"
}

start() {
  [[ -x "$LSVENV/bin/python" ]] || die "LocalStack venv missing at $LSVENV; run acceptance-tests/setup.sh"
  if healthy; then return 0; fi
  if running_pid >/dev/null; then
    : # started earlier and still booting; just wait below
  else
    mkdir -p "$LSDIR/fs" "$LSDIR/config"
    # OVERRIDE_IN_DOCKER=0: this machine has /.dockerenv, which would make LocalStack
    #   assume container paths (/var/lib/localstack, ...); force host mode.
    # FILESYSTEM_ROOT/CONFIG_DIR: keep every file LocalStack writes under the cache.
    # DNS_ADDRESS=0: don't start the DNS server (it binds port 53 on all interfaces).
    # SKIP_SSL_CERT_DOWNLOAD/DISABLE_EVENTS: no outbound network (only registries reachable).
    # EAGER_SERVICE_LOADING: load ec2/sts/iam at boot so the first test call isn't slow.
    (
      cd "$LSDIR"
      env \
        GATEWAY_LISTEN="127.0.0.1:$PORT" \
        GATEWAY_SERVER=hypercorn \
        SERVICES=ec2,sts,iam \
        EAGER_SERVICE_LOADING=1 \
        OVERRIDE_IN_DOCKER=0 \
        FILESYSTEM_ROOT="$LSDIR/fs" \
        CONFIG_DIR="$LSDIR/config" \
        DNS_ADDRESS=0 \
        SKIP_SSL_CERT_DOWNLOAD=1 \
        DISABLE_EVENTS=1 \
        PERSISTENCE=0 \
        AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
        setsid "$LSVENV/bin/python" -m localstack.runtime.main \
          </dev/null >"$LOGFILE" 2>&1 &
      echo $! >"$PIDFILE"
    )
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy; do
    if ! running_pid >/dev/null; then
      tail -n 40 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      die "LocalStack exited during startup (log: $LOGFILE)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$LOGFILE" >&2 || true
      die "LocalStack not healthy after ${START_TIMEOUT}s (log: $LOGFILE)"
    fi
    sleep 0.5
  done
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then rm -f "$PIDFILE"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}

status() {
  local pid
  if healthy; then
    pid="$(running_pid || echo '?')"
    echo "localstack: healthy at $ENDPOINT (pid $pid)"
  elif pid="$(running_pid)"; then
    echo "localstack: running (pid $pid) but ec2 not healthy at $ENDPOINT"; return 1
  else
    echo "localstack: not running"; return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
