#!/usr/bin/env bash
# gce.sh start|stop|status|discovery — runs paved's local Compute Engine API
# (acceptance-tests/gce/server.py, standard-library Python) as a host process on
# 127.0.0.1:${PAVED_GCE_PORT:-18090}, like localstack.sh runs LocalStack.
#   start      idempotent; waits until /_test/health answers; prints the base URL last
#   stop       ends only the process in the pidfile
#   status     exit 0 when healthy, 1 when running but not answering, 3 when not running
#   discovery  prints the path of compute.v1.json (Google's discovery document)
# The server needs only compute.v1.json, from PyPI google-api-python-client (pinned in
# gce/requirements.txt), installed --no-deps into a venv under $PAVED_CACHE/gcevenv.
# State, pidfile and log live under $PAVED_CACHE/gce/. State is in memory: a restart
# starts empty.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
VENV="$PAVED_CACHE/gcevenv"
DIR="$PAVED_CACHE/gce"
PIDFILE="$DIR/gce.pid"
LOGFILE="$DIR/gce.log"
PORT="${PAVED_GCE_PORT:-18090}"
URL="http://127.0.0.1:$PORT"
START_TIMEOUT="${PAVED_GCE_TIMEOUT:-60}"
REQS="$here/gce/requirements.txt"
PYTHON="${PAVED_GCE_PYTHON:-python3}"

die() { echo "gce.sh: $*" >&2; exit 1; }

ensure_venv() {
  local stamp
  stamp="reqs=$(sha256sum "$REQS" | cut -d' ' -f1) py=$("$PYTHON" -c 'import sys;print(sys.version.split()[0])')"
  if [[ -x "$VENV/bin/python" && -f "$VENV/.paved-stamp" && "$(cat "$VENV/.paved-stamp")" == "$stamp" ]]; then
    return 0
  fi
  rm -rf "$VENV"
  mkdir -p "$PAVED_CACHE"
  local log="$PAVED_CACHE/gcevenv-setup.log"
  if ! { "$PYTHON" -m venv "$VENV" &&
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$VENV/bin/pip" install -q --no-deps -r "$REQS"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$VENV"
    die "could not build $VENV"
  fi
  echo "$stamp" >"$VENV/.paved-stamp"
}

discovery_path() {
  ensure_venv
  "$VENV/bin/python" - <<'EOF'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("googleapiclient")
p = pathlib.Path(list(spec.submodule_search_locations)[0]) / "discovery_cache" / "documents" / "compute.v1.json"
if not p.is_file():
    sys.exit(f"compute.v1.json not found at {p}")
print(p)
EOF
}

healthy() {
  python3 - "$URL/_test/health" <<'EOF' 2>/dev/null
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if json.load(r).get("ok") else 1)
except Exception:
    sys.exit(1)
EOF
}

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: it must still be our server.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "gce/server.py" || return 1
  echo "$pid"
}

start() {
  if healthy; then echo "$URL"; return 0; fi
  if ! running_pid >/dev/null; then
    local doc; doc="$(discovery_path)"
    mkdir -p "$DIR"
    (
      cd "$DIR"
      PAVED_GCE_DISCOVERY="$doc" setsid "$VENV/bin/python" "$here/gce/server.py" --host 127.0.0.1 --port "$PORT" \
        </dev/null >"$LOGFILE" 2>&1 &
      echo $! >"$PIDFILE"
    )
  fi
  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy; do
    if ! running_pid >/dev/null; then
      tail -n 40 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      die "the local Compute API exited during startup (log: $LOGFILE)"
    fi
    ((SECONDS < deadline)) || { tail -n 40 "$LOGFILE" >&2 || true; die "not healthy after ${START_TIMEOUT}s (log: $LOGFILE)"; }
    sleep 0.2
  done
  echo "$URL"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then rm -f "$PIDFILE"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

status() {
  local pid
  if healthy; then
    pid="$(running_pid || echo '?')"
    echo "gce: healthy at $URL (pid $pid)"
  elif pid="$(running_pid)"; then
    echo "gce: running (pid $pid) but not answering at $URL"; return 1
  else
    echo "gce: not running"; return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  discovery) discovery_path ;;
  *) echo "usage: $0 start|stop|status|discovery" >&2; exit 2 ;;
esac
