#!/usr/bin/env bash
# postgres.sh start|stop|status|url — a throwaway local PostgreSQL 15 with pgvector for the
# tests, run as a plain host process (no Docker).
#
#   start   installs what is missing (see below), creates the cluster on first use, starts it
#           and checks that `CREATE EXTENSION vector` works. Idempotent: when the server is
#           already up and healthy it only prints the URL. The last stdout line is the URL.
#   stop    stops this server only (the cluster in $PGDIR/data; nothing else is touched).
#   status  exit 0 when the server accepts the paved login and has pgvector; 1 when our
#           postmaster runs but is not healthy; 3 when it is not running.
#   url     prints postgresql://paved:paved@127.0.0.1:$PORT/paved (whether or not it is up).
#
# Server: 127.0.0.1:${PAVED_PG_PORT:-55432} only (no Unix socket), one role `paved` (password
# `paved`, scram-sha-256, SUPERUSER — pgvector is not a "trusted" extension, so only a superuser
# can CREATE/DROP it), database `paved` with the `vector` extension already created.
#
# Installs (as root; via sudo when run as another user), each step only when needed:
#   * postgresql-15 (Debian) if /usr/lib/postgresql/15/bin/postgres is missing.
#   * pgvector: first `apt-get install postgresql-15-pgvector` (bookworm has no such package
#     today, but a mirror that has it wins); otherwise Debian's pgvector 0.8.0 source tarball
#     (the one trixie builds from), sha256-checked, built with PGXS against the installed
#     server (postgresql-server-dev-15 pinned to the server's exact version, so apt does not
#     upgrade the server) with OPTFLAGS="" (no -march=native: the cached build stays portable)
#     and with_llvm=no (no JIT bitcode). The build is installed into a staging tree under
#     $PAVED_CACHE/pgvector/0.8.0/stage, which is copied into the system directories whenever
#     they lack the files — so a warm cache re-installs without apt, headers or a compiler.
#
# Where things live:
#   $PAVED_CACHE (default $HOME/.cache/paved)/postgres/   postgres.log (server), install.log
#   Data directory ($PGDIR/data):
#     * run as non-root:  PGDIR=$PAVED_CACHE/postgres, server runs as the invoking user.
#     * run as root:      PostgreSQL refuses to run as root, so the server runs as the Debian
#       `postgres` user. That user cannot traverse /root (mode 0700), where $PAVED_CACHE
#       usually is, and we do not loosen /root's permissions. So the cluster lives in
#       PGDIR=/var/tmp/paved-pg-<uid>-<port> (owned by postgres, mode 0700; keyed by port since
#       the port is what two clusters cannot share) and $PAVED_CACHE/postgres/data is a symlink
#       to it. The server log is still $PAVED_CACHE/postgres/postgres.log: root opens it and
#       the postmaster inherits the descriptor. /var/tmp survives reboots; should tmp cleaning
#       ever remove part of the cluster, `start` re-creates it.
#   Override the cluster location with PAVED_PG_DIR.
set -euo pipefail

PG_MAJOR=15
PGVECTOR_VERSION="0.8.0"
PGVECTOR_URL="http://deb.debian.org/debian/pool/main/p/pgvector/pgvector_${PGVECTOR_VERSION}.orig.tar.gz"
PGVECTOR_SHA256="867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0"

PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
PORT="${PAVED_PG_PORT:-55432}"
PG_USER=paved
PG_PASSWORD=paved
PG_DB=paved
URL="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PORT/$PG_DB"
START_TIMEOUT="${PAVED_PG_TIMEOUT:-60}"

PGBIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PG_CONFIG="$PGBIN/pg_config"
LOGDIR="$PAVED_CACHE/postgres"
LOGFILE="$LOGDIR/postgres.log"
INSTALL_LOG="$LOGDIR/install.log"
LOCKFILE="$LOGDIR/.lock"
VEC_CACHE="$PAVED_CACHE/pgvector/$PGVECTOR_VERSION"

if [[ "$(id -u)" == 0 ]]; then
  RUN_AS=postgres
  PGDIR="${PAVED_PG_DIR:-/var/tmp/paved-pg-$(id -u)-$PORT}"
else
  RUN_AS=""
  PGDIR="${PAVED_PG_DIR:-$LOGDIR}"
fi
DATA="$PGDIR/data"

export DEBIAN_FRONTEND=noninteractive
# Don't let the caller's libpq environment redirect our psql calls.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS PGSSLMODE || true

die() { echo "postgres.sh: $*" >&2; exit 1; }
say() { echo "postgres.sh: $*" >&2; }

# Both helpers close fd 9 (the start/stop lock, see with_lock) for the command: otherwise a
# daemon started under them (the postmaster; a cluster started by a package's postinst) would
# inherit it and hold the lock for its whole life, blocking every later start/stop.
as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@" 9>&-
  elif command -v sudo >/dev/null; then sudo -n -E "$@" 9>&-
  else die "need root to run: $* (no sudo)"; fi
}

# Run a command as the server's OS user, from a directory that user can enter.
as_pg() {
  if [[ -n "$RUN_AS" ]]; then (cd / && runuser -u "$RUN_AS" -- "$@" 9>&-)
  else "$@" 9>&-; fi
}

# Run a command with its output appended to the install log; on failure show the log tail.
logged() {
  echo "+ $*" >>"$INSTALL_LOG"
  if ! "$@" >>"$INSTALL_LOG" 2>&1; then
    tail -n 30 "$INSTALL_LOG" >&2
    return 1
  fi
}

apt_install() {
  logged as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends -o DPkg::Lock::Timeout=300 "$@"
}

apt_updated=0
apt_update() {
  ((apt_updated)) && return 0
  say "apt-get update"
  logged as_root apt-get update -q -o DPkg::Lock::Timeout=300 || die "apt-get update failed (log: $INSTALL_LOG)"
  apt_updated=1
}

# ---- installation ---------------------------------------------------------------------------

ensure_server() {
  [[ -x "$PGBIN/postgres" && -x "$PGBIN/initdb" && -x "$PGBIN/pg_ctl" && -x "$PGBIN/psql" ]] && return 0
  say "installing postgresql-$PG_MAJOR"
  apt_install "postgresql-$PG_MAJOR" || { apt_update; apt_install "postgresql-$PG_MAJOR"; } ||
    die "could not install postgresql-$PG_MAJOR (log: $INSTALL_LOG)"
}

pkglibdir() { "$PG_CONFIG" --pkglibdir; }
extdir() { echo "$("$PG_CONFIG" --sharedir)/extension"; }

# True when the server can load *some* installed pgvector (control, its default version's
# script and the shared library).
vector_installed() {
  local ctl ver
  ctl="$(extdir)/vector.control"
  [[ -f "$ctl" && -f "$(pkglibdir)/vector.so" ]] || return 1
  ver="$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$ctl")"
  [[ -n "$ver" && -f "$(extdir)/vector--$ver.sql" ]]
}

stage_complete() {
  local s="$VEC_CACHE/stage"
  [[ -f "$VEC_CACHE/.stamp" && "$(cat "$VEC_CACHE/.stamp")" == "$(stage_stamp)" ]] &&
    [[ -f "$s$(pkglibdir)/vector.so" && -f "$s$(extdir)/vector.control" &&
       -f "$s$(extdir)/vector--$PGVECTOR_VERSION.sql" ]]
}
stage_stamp() { echo "pgvector=$PGVECTOR_VERSION sha256=$PGVECTOR_SHA256 pg=$PG_MAJOR opt=portable llvm=no"; }

install_stage() {
  say "installing pgvector $PGVECTOR_VERSION from $VEC_CACHE/stage"
  # --no-overwrite-dir: leave existing system directories' modes/times alone.
  tar -C "$VEC_CACHE/stage" -cf - . |
    as_root tar -C / -xf - --no-overwrite-dir --no-same-owner
}

download() {
  local url="$1" out="$2"
  if command -v curl >/dev/null; then curl -fsSL --retry 3 --connect-timeout 20 -o "$out" "$url"
  else wget -q -t 3 -T 20 -O "$out" "$url"; fi
}

build_pgvector() {
  local pkgs=() ver
  # Headers for the installed server; pin to its exact version so apt does not upgrade it.
  ver="$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null || true)"
  if [[ ! -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ]]; then
    pkgs+=("postgresql-server-dev-$PG_MAJOR")
  fi
  command -v gcc >/dev/null && command -v make >/dev/null || pkgs+=(build-essential)
  command -v curl >/dev/null || command -v wget >/dev/null || pkgs+=(curl)
  if ((${#pkgs[@]})); then
    say "installing build dependencies: ${pkgs[*]}"
    local pinned=("${pkgs[@]}")
    [[ -n "$ver" ]] && pinned=("${pkgs[@]/#postgresql-server-dev-$PG_MAJOR/postgresql-server-dev-$PG_MAJOR=$ver}")
    apt_install "${pinned[@]}" || apt_install "${pkgs[@]}" ||
      { apt_update; apt_install "${pinned[@]}" || apt_install "${pkgs[@]}"; } ||
      die "could not install ${pkgs[*]} (log: $INSTALL_LOG)"
  fi

  mkdir -p "$VEC_CACHE"
  local tarball="$VEC_CACHE/pgvector_${PGVECTOR_VERSION}.orig.tar.gz"
  if [[ ! -f "$tarball" ]] || ! echo "$PGVECTOR_SHA256  $tarball" | sha256sum -c --status; then
    say "downloading $PGVECTOR_URL"
    download "$PGVECTOR_URL" "$tarball.part" || die "download failed: $PGVECTOR_URL"
    echo "$PGVECTOR_SHA256  $tarball.part" | sha256sum -c --status ||
      die "sha256 mismatch for $PGVECTOR_URL (got $(sha256sum "$tarball.part" | cut -d' ' -f1))"
    mv "$tarball.part" "$tarball"
  fi

  say "building pgvector $PGVECTOR_VERSION"
  rm -rf "$VEC_CACHE/src" "$VEC_CACHE/stage" "$VEC_CACHE/.stamp"
  mkdir -p "$VEC_CACHE/src"
  tar -C "$VEC_CACHE/src" --strip-components=1 -xzf "$tarball"
  local mk=(make -C "$VEC_CACHE/src" PG_CONFIG="$PG_CONFIG" OPTFLAGS="" with_llvm=no)
  logged "${mk[@]}" -j"$(nproc 2>/dev/null || echo 2)" || die "pgvector build failed (log: $INSTALL_LOG)"
  logged "${mk[@]}" install DESTDIR="$VEC_CACHE/stage" || die "pgvector staging install failed (log: $INSTALL_LOG)"
  stage_stamp >"$VEC_CACHE/.stamp"
  stage_complete || die "pgvector staging tree incomplete under $VEC_CACHE/stage"
}

ensure_pgvector() {
  vector_installed && return 0
  say "pgvector not installed; trying apt-get install postgresql-$PG_MAJOR-pgvector"
  if apt_install "postgresql-$PG_MAJOR-pgvector" 2>/dev/null && vector_installed; then return 0; fi
  if ! stage_complete; then build_pgvector; fi
  install_stage
  vector_installed || die "pgvector still not installed in $(extdir) / $(pkglibdir)"
}

# ---- server -----------------------------------------------------------------------------------

psql_q() { PGCONNECT_TIMEOUT=3 PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$@"; }

# Healthy: the paved login works on database paved and pgvector is created there.
healthy() {
  [[ "$(psql_q "$URL" -c "select 1 from pg_extension where extname = 'vector'" 2>/dev/null)" == 1 ]]
}

# The postmaster pid from our data dir's postmaster.pid, if that process is alive and is a
# postgres server for this data dir.
running_pid() {
  local pid
  pid="$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$PGBIN/postgres" ]] || return 1
  echo "$pid"
}

prepare_dirs() {
  mkdir -p "$LOGDIR"
  if [[ -n "$RUN_AS" ]]; then
    getent passwd "$RUN_AS" >/dev/null || die "OS user $RUN_AS missing (it comes with postgresql-$PG_MAJOR)"
    if [[ -L "$PGDIR" || ( -e "$PGDIR" && ! -d "$PGDIR" ) ]]; then die "$PGDIR is not a directory"; fi
    if [[ -d "$PGDIR" ]]; then
      local owner; owner="$(stat -c %U "$PGDIR")"
      [[ "$owner" == "$RUN_AS" || "$owner" == root ]] || die "$PGDIR is owned by $owner, not $RUN_AS"
    fi
    install -d -o "$RUN_AS" -g "$(id -gn "$RUN_AS")" -m 0700 "$PGDIR"
    # Point $PAVED_CACHE/postgres/data at the real data dir (replace only our own symlink).
    if [[ -L "$LOGDIR/data" || ! -e "$LOGDIR/data" ]]; then ln -sfn "$DATA" "$LOGDIR/data"; fi
  else
    mkdir -p "$PGDIR"
  fi
}

init_cluster() {
  if [[ -f "$DATA/PG_VERSION" && "$(cat "$DATA/PG_VERSION")" == "$PG_MAJOR" && -f "$DATA/global/pg_control" ]]; then
    return 0
  fi
  if [[ -e "$DATA" ]]; then
    say "discarding incomplete or foreign data dir $DATA"
    rm -rf "$DATA"
  fi
  say "initdb $DATA"
  local pwfile="$PGDIR/.pwfile"
  (umask 077; echo "$PG_PASSWORD" >"$pwfile")
  [[ -n "$RUN_AS" ]] && chown "$RUN_AS" "$pwfile"
  if ! as_pg "$PGBIN/initdb" -D "$DATA" -U "$PG_USER" --pwfile="$pwfile" --auth=scram-sha-256 \
       -E UTF8 --locale=C.UTF-8 >>"$LOGFILE" 2>&1; then
    rm -f "$pwfile"; tail -n 20 "$LOGFILE" >&2; die "initdb failed (log: $LOGFILE)"
  fi
  rm -f "$pwfile"
  echo "include 'paved.conf'" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
}

# Settings are rewritten on every start so that changes to this script take effect.
write_config() {
  as_pg tee "$DATA/paved.conf" >/dev/null <<EOF
# Written by acceptance-tests/postgres.sh on every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
password_encryption = 'scram-sha-256'
logging_collector = off
log_destination = 'stderr'
EOF
  as_pg tee "$DATA/pg_hba.conf" >/dev/null <<'EOF'
# Written by acceptance-tests/postgres.sh on every start; edits are lost.
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  scram-sha-256
EOF
}

wait_healthy_or_die() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until psql_q "postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PORT/postgres" -c 'select 1' >/dev/null 2>&1; do
    if ! running_pid >/dev/null; then
      tail -n 30 "$LOGFILE" >&2 || true
      die "PostgreSQL exited during startup (log: $LOGFILE)"
    fi
    ((SECONDS < deadline)) || { tail -n 30 "$LOGFILE" >&2 || true; die "PostgreSQL not accepting logins after ${START_TIMEOUT}s (log: $LOGFILE)"; }
    sleep 0.2
  done
}

provision() {
  local admin="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PORT/postgres"
  if [[ "$(psql_q "$admin" -c "select 1 from pg_database where datname = '$PG_DB'")" != 1 ]]; then
    psql_q "$admin" -c "create database $PG_DB owner $PG_USER" >/dev/null
  fi
  # Prove the extension loads: create it, use the type, an operator and the hnsw AM.
  psql_q "$URL" >/dev/null <<'EOF' || die "pgvector does not work (CREATE EXTENSION vector failed; log: $LOGFILE)"
create extension if not exists vector;
begin;
create temporary table paved_pgvector_check (e vector(3));
insert into paved_pgvector_check values ('[1,2,3]');
create index on paved_pgvector_check using hnsw (e vector_cosine_ops);
select e <=> '[1,2,4]' from paved_pgvector_check;
rollback;
EOF
}

start() {
  ensure_server
  ensure_pgvector
  if healthy; then echo "$URL"; return 0; fi
  prepare_dirs
  if ! running_pid >/dev/null; then
    if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 1 >/dev/null 2>&1; then
      die "something else is already listening on 127.0.0.1:$PORT (not the cluster in $DATA); set PAVED_PG_PORT"
    fi
    init_cluster
    write_config
    say "starting PostgreSQL on 127.0.0.1:$PORT (data $DATA, log $LOGFILE)"
    echo "=== postgres.sh start $(date -u +%FT%TZ) ===" >>"$LOGFILE"
    # No -l: the server inherits this stdout/stderr, i.e. the log file opened here (by root
    # when run as root), which the postgres user could not open under /root itself.
    if ! as_pg "$PGBIN/pg_ctl" -D "$DATA" -w -t "$START_TIMEOUT" start >>"$LOGFILE" 2>&1 </dev/null; then
      tail -n 30 "$LOGFILE" >&2 || true
      die "pg_ctl start failed (log: $LOGFILE)"
    fi
  fi
  wait_healthy_or_die
  provision
  healthy || die "PostgreSQL is up but not healthy at $URL (log: $LOGFILE)"
  echo "$URL"
}

stop() {
  running_pid >/dev/null || return 0
  as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >>"$LOGFILE" 2>&1 ||
    { tail -n 20 "$LOGFILE" >&2 || true; die "pg_ctl stop failed (log: $LOGFILE)"; }
}

status() {
  local pid
  if [[ -x "$PGBIN/psql" ]] && healthy; then
    echo "postgres: healthy at $URL (pid $(running_pid || echo '?'), data $DATA)"
  elif pid="$(running_pid)"; then
    echo "postgres: running (pid $pid) but not healthy at $URL"; return 1
  else
    echo "postgres: not running"; return 3
  fi
}

# Serialises start/stop (e.g. parallel test runners). Children that outlive us must not
# inherit fd 9: see as_root/as_pg.
with_lock() {
  mkdir -p "$LOGDIR"
  exec 9>"$LOCKFILE"
  flock -w 300 9 || die "timed out waiting for $LOCKFILE (held by: $(fuser "$LOCKFILE" 2>/dev/null || echo '?'))"
  "$@"
}

case "${1:-}" in
  start) with_lock start ;;
  stop) with_lock stop ;;
  status) status ;;
  url) echo "$URL" ;;
  *) echo "usage: $0 start|stop|status|url" >&2; exit 2 ;;
esac
