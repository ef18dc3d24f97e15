#!/usr/bin/env bash
# down.sh — stops the processes that up.sh started (only those named by the pidfiles in
# $PAVED_CACHE/cluster/, and only when the pid still runs the binary up.sh started) and
# removes etcd's data dir, so the next up.sh starts from an empty cluster. Certificates,
# kubeconfig and logs are kept (the CA, and so the kubeconfig, stay valid across restarts).
set -euo pipefail

PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
C="$PAVED_CACHE/cluster"
TIMEOUT="${PAVED_K8S_STOP_TIMEOUT:-10}"

log() { echo "down.sh: $*" >&2; }

mkdir -p "$C"
exec 9>"$C/.up.lock"   # not while an up.sh is starting things (but never hang on it)
flock -w 60 9 || log "another up.sh holds $C/.up.lock for 60s; stopping anyway"

# pid_of <name>: the pid from the pidfile if that process still runs <name> from a
# k8s/<version>/bin directory of this cache (what up.sh starts); nothing otherwise.
pid_of() {
  local pidf="$C/$1.pid" pid exe
  [[ -f "$pidf" ]] || return 1
  pid="$(cat "$pidf")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "$exe" == "$PAVED_CACHE"/k8s/*/bin/"$1" ]] || return 1
  echo "$pid"
}

# stop <names...>: SIGTERM to each (together), wait for all, SIGKILL after TIMEOUT.
stop() {
  local name pid pids=() names=()
  for name in "$@"; do
    if pid="$(pid_of "$name")"; then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$name")
    fi
  done
  local deadline=$((SECONDS + TIMEOUT)) i
  for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null; do
      if ((SECONDS >= deadline)); then
        log "${names[$i]} (pid ${pids[$i]}) still running after ${TIMEOUT}s: SIGKILL"
        kill -KILL "${pids[$i]}" 2>/dev/null || true
        sleep 0.2
        break
      fi
      sleep 0.1
    done
  done
  for name in "$@"; do rm -f "$C/$name.pid"; done
}

# Clients of the apiserver first, then the apiserver, etcd last.
stop kwok kube-scheduler kube-controller-manager
stop kube-apiserver
stop etcd

rm -rf "$C/etcd-data"
log "stopped; removed $C/etcd-data"
