#!/usr/bin/env bash
# Whole-process benchmark: process start -> go-plugin handshake line, AutoMTLS on, measured with
# shared/bench/handshake.py in one sitting for three binaries:
#   floor  /bin/echo (prints a line and exits: the cost of spawning a process here)
#   null   terraform-provider-null 2.1.2 (a Go SDK provider; installed by acceptance-tests/setup.sh)
#   paved  terraform-provider-paved (release build)
# Usage: bash benches/handshake.sh [RUNS]   (builds the release binary if missing)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-20}"
cache="${PAVED_CACHE:-$HOME/.cache/paved}"
bench="${PAVED_HANDSHAKE_PY:-$repo/benches/handshake.py}"
bin="${PAVED_RELEASE_BIN:-$repo/target/release/terraform-provider-paved}"
[ -x "$bin" ] || (cd "$repo" && cargo build --release --locked --bin terraform-provider-paved)
bash "$repo/acceptance-tests/setup.sh" >/dev/null
for b in /bin/echo "$cache/bin/terraform-provider-null" "$bin"; do
  python3 "$bench" "$b" "$runs" --mtls
done
