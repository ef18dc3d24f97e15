#!/usr/bin/env bash
# fuzz/run.sh [TARGET...] — builds the cargo-fuzz targets (all of them, or those named) and runs
# each for a fixed number of executions, then prints one line per target: executions, seconds,
# executions per second and crashes. Exits 1 if any target crashed (or failed to build/run);
# each crashing input is kept under $PAVED_CACHE/fuzz-out/<target>/ and its path printed.
#
# Installs what it needs: cargo-fuzz (pinned, into $PAVED_CACHE/cargo-fuzz/<version>) and, if
# missing, the nightly toolchain libFuzzer's instrumentation needs. The target directory is
# cached outside the repository per nightly version ($PAVED_CACHE/fuzz-target/<version>):
# the first build instruments every dependency (AWS SDK, kube, tonic…), later ones recompile
# paved only. Each target's working corpus grows in $PAVED_CACHE/fuzz-corpus/<target>, seeded
# from the checked-in fuzz/corpus/<target> (which `cargo test` replays too).
#
# Env: PAVED_FUZZ_RUNS (executions per target, default 1000000), PAVED_FUZZ_MAX_LEN (longest
# input, default 8192), PAVED_FUZZ_TOOLCHAIN (default nightly), PAVED_CACHE (~/.cache/paved),
# PAVED_FUZZ_WAIT_FILE (the build waits until this file exists: run.sh lets the provider's own
# build finish first, so two compilations of the AWS SDK never share the machine's memory).
# Dependencies are compiled without coverage instrumentation (rustc-wrapper.sh says why).
# Reproduce a crash: "$PAVED_CACHE/fuzz-target/<version>/x86_64-unknown-linux-gnu/release/<target>" <input>
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="${PAVED_CACHE:-$HOME/.cache/paved}"
runs="${PAVED_FUZZ_RUNS:-1000000}"
max_len="${PAVED_FUZZ_MAX_LEN:-8192}"
toolchain="${PAVED_FUZZ_TOOLCHAIN:-nightly}"
cargo_fuzz_version=0.13.2
all_targets=(dynamic_value_msgpack state_json crd_convert validators)
log() { echo "fuzz/run.sh: $*" >&2; }

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ -f "$here/fuzz_targets/$t.rs" ]] || { log "no target $t (have: ${all_targets[*]})"; exit 2; }
done

if [[ -n "${PAVED_FUZZ_WAIT_FILE:-}" ]]; then
  log "waiting for $PAVED_FUZZ_WAIT_FILE"
  while [[ ! -e "$PAVED_FUZZ_WAIT_FILE" ]]; do sleep 5; done
fi

fuzz_root="$cache/cargo-fuzz/$cargo_fuzz_version"
if [[ ! -x "$fuzz_root/bin/cargo-fuzz" ]]; then
  log "installing cargo-fuzz $cargo_fuzz_version into $fuzz_root"
  cargo install --locked --quiet cargo-fuzz --version "$cargo_fuzz_version" --root "$fuzz_root" >&2
fi
if ! cargo "+$toolchain" --version >/dev/null 2>&1; then
  log "installing the $toolchain toolchain"
  rustup toolchain install "$toolchain" --profile minimal >&2
fi
nightly="$(rustc "+$toolchain" --version | tr -c 'A-Za-z0-9.\n' '_')"
target_dir="$cache/fuzz-target/$nightly"

# The lock is committed; a change of paved's dependencies shows up as a change to it.
lock_before="$(cksum <"$here/Cargo.lock" 2>/dev/null || true)"
t0=$SECONDS
# --sanitizer none: the harnesses run safe Rust only, AddressSanitizer would double the build
# and halve the speed; overflow checks and debug assertions stay on (-a), and fuzz/src/lib.rs
# limits allocations instead of ASan's malloc hooks.
if ! (cd "$repo" && PATH="$fuzz_root/bin:$PATH" RUSTC_WRAPPER="$here/rustc-wrapper.sh" nice -n 10 cargo "+$toolchain" fuzz build \
  --fuzz-dir "$here" --sanitizer none --debug-assertions --target-dir "$target_dir" >&2); then
  log "the fuzz build failed"
  exit 1
fi
log "built in $((SECONDS - t0))s ($target_dir)"
if [[ "$(cksum <"$here/Cargo.lock")" != "$lock_before" ]]; then
  log "warning: fuzz/Cargo.lock changed (paved's dependencies changed?): commit it"
fi
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"

failed=0
printf '%-22s %10s %8s %9s %8s\n' target executions seconds exec/s crashes
for t in "${targets[@]}"; do
  corpus="$cache/fuzz-corpus/$t" out="$cache/fuzz-out/$t"
  mkdir -p "$corpus" "$out"
  touch "$out/run.start"
  before="$(find "$out" -maxdepth 1 -type f ! -name 'run.*' | wc -l)"
  start="$(date +%s.%N)"
  rc=0
  nice -n 10 "$bin_dir/$t" -runs="$runs" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/" "$corpus" "$here/corpus/$t" \
    >"$out/run.log" 2>&1 || rc=$?
  end="$(date +%s.%N)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/run.log" | tail -n 1)"
  crashes=$(($(find "$out" -maxdepth 1 -type f ! -name 'run.*' | wc -l) - before))
  secs="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
  rate="$(awk -v n="${execs:-0}" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')"
  printf '%-22s %10s %8s %9s %8s\n' "$t" "${execs:-?}" "$secs" "$rate" "$crashes"
  if [[ "$rc" != 0 || "$crashes" != 0 ]]; then
    failed=1
    log "$t failed (exit $rc); last lines of $out/run.log:"
    tail -n 30 "$out/run.log" >&2
    find "$out" -maxdepth 1 -type f ! -name 'run.*' -newer "$out/run.start" -print >&2 || true
  fi
done
exit "$failed"
