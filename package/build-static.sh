#!/usr/bin/env bash
# build-static.sh — builds the release binary: static (x86_64-unknown-linux-musl), release
# profile, reproducible (static-cargo.sh holds the flags). The same file goes into the
# Terraform zip and the controller image, so it must run on any Linux with no libc at all.
# Prints the binary's path as its last line. Env: as static-cargo.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
log() { echo "build-static.sh: $*" >&2; }
die() { log "$*"; exit 1; }
export CARGO_TARGET_DIR="${PAVED_RELEASE_TARGET_DIR:-$repo/target}"

t0=$SECONDS
bash "$here/static-cargo.sh" build --locked --bin terraform-provider-paved >&2
log "built in $((SECONDS - t0))s"
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/terraform-provider-paved"
[ -x "$bin" ] || die "no binary at $bin"
echo "$bin"
