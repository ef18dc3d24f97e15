#!/usr/bin/env bash
# RUSTC_WRAPPER for fuzz/run.sh: cargo-fuzz puts libFuzzer's coverage instrumentation
# (SanitizerCoverage) into RUSTFLAGS, so every crate gets it. Only paved's own code is worth
# coverage feedback: generic code from dependencies (serde_json, the std collections) is
# instantiated and instrumented in paved anyway, while instrumenting the AWS SDK, kube and
# tonic — code the targets never run — made one rustc process of a cold build peak at ~17 GB
# and took most of its ~15 CPU-minutes. So the instrumentation flags are dropped for crates
# compiled from the registry or a git checkout; `--cfg fuzzing` and the rest stay.
rustc="$1"
shift
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
dep=0
for a in "$@"; do
  case "$a" in
    "$cargo_home"/registry/*.rs | "$cargo_home"/git/*.rs) dep=1 ;;
  esac
done
[[ "$dep" == 1 ]] || exec "$rustc" "$@"
args=()
drop_next=0
for a in "$@"; do
  if [[ "$drop_next" == 1 ]]; then
    drop_next=0
    case "$a" in
      passes=sancov-module | llvm-args=-sanitizer-coverage*) continue ;;
      *) args+=("-C") ;;
    esac
  fi
  case "$a" in
    -Cpasses=sancov-module | -Cllvm-args=-sanitizer-coverage*) continue ;;
    -C) drop_next=1; continue ;;
  esac
  args+=("$a")
done
[[ "$drop_next" == 1 ]] && args+=("-C")
exec "$rustc" "${args[@]}"
