#!/usr/bin/env bash
# static-cargo.sh CARGO-ARGS... — runs cargo for the static release target
# (x86_64-unknown-linux-musl, release profile, reproducible flags), so the shipped binary
# (build-static.sh) and the test binaries CI runs (`static-cargo.sh test`) are compiled by one
# profile with one set of flags: every dependency is compiled once and shared by both.
#
# Reproducible means: two builds of one commit, from any checkout directory, give the same
# bytes. Paths that would be embedded (panic locations, debug strings) are remapped to fixed
# prefixes, SOURCE_DATE_EPOCH is pinned, symbols are stripped, and codegen-units are those of
# the release profile (deterministic for a fixed count).
#
# Needs a musl C compiler for aws-lc-sys and ring: when `musl-gcc` is missing and apt-get is
# available (Debian, CI), musl-tools is installed. Env: PAVED_RELEASE_TARGET_DIR (default
# target/), CARGO (default cargo). Prints nothing of its own on stdout (cargo's stdout passes
# through: test output).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
target=x86_64-unknown-linux-musl
log() { echo "static-cargo.sh: $*" >&2; }
die() { log "$*"; exit 1; }

if ! command -v musl-gcc >/dev/null; then
  command -v apt-get >/dev/null || die "musl-gcc not found; install musl-tools (Debian) or musl-gcc"
  log "musl-gcc not found: installing musl-tools"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq musl-tools >&2
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$target"; then
  log "adding rustup target $target"
  rustup target add "$target" >&2
fi

cargo="${CARGO:-cargo}"
sysroot="$(rustc --print sysroot)"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
# The binary embeds no timestamp, but aws-lc-sys's build script reruns whenever
# SOURCE_DATE_EPOCH changes, and with it every crate above it (rustls, kube, the AWS SDKs: a
# cold build). So the compile gets one pinned value, not the commit time (release.sh uses
# that for the archives): a new commit recompiles only paved.
export SOURCE_DATE_EPOCH="${PAVED_BUILD_EPOCH:-1796179841}"
# Only target crates get RUSTFLAGS when --target is given (build scripts and proc macros do
# not), so these never disturb the host build. relocation-model=static: a non-PIE static
# executable, for the same start-up reason build.rs links glibc builds with -no-pie.
export RUSTFLAGS="--remap-path-prefix=$repo=/paved --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$sysroot=/rustc -C relocation-model=static -C target-feature=+crt-static"
export CARGO_PROFILE_RELEASE_STRIP=symbols
export CC_x86_64_unknown_linux_musl=musl-gcc
# The C parts (aws-lc, ring) embed __FILE__ paths; map them like the Rust ones.
export CFLAGS_x86_64_unknown_linux_musl="-ffile-prefix-map=$repo=/paved -ffile-prefix-map=$cargo_home=/cargo"
export CARGO_TARGET_DIR="${PAVED_RELEASE_TARGET_DIR:-$repo/target}"

sub="$1"
shift
cd "$repo"
exec nice -n "${PAVED_STATIC_NICE:-5}" "$cargo" "$sub" --release --target "$target" "$@"
