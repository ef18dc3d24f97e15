#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs Terraform 1.0.3 and LocalStack (setup.sh),
# builds OpenTofu from Go modules (tofu/build.sh, in the background while the rest goes on),
# builds the local Kubernetes control plane from Go modules (cluster/build.sh, cached by version),
# builds the Crossplane CLI tooling (xpcli/build.sh), starts LocalStack, PostgreSQL with pgvector
# (postgres.sh) and the control plane, builds the provider once (dev profile), runs
# `cargo test` (unit tests and the LocalStack-backed integration tests) and then the acceptance
# tests, which drive the real CLIs against the provider binary that build produced, on a matrix:
# Terraform 1.0.3 (everything), the newest Terraform >= 1.6 on PATH and OpenTofu (every
# CLI-driven test again). See README.md beside this file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="${PAVED_CACHE:-$HOME/.cache/paved}"
in_ci=0
case "${CI:-}" in 1 | true | TRUE | True | yes) in_ci=1 ;; esac

# The CLI matrix's second leg: the newest Terraform >= 1.6 on PATH (Terraform >= 1.6 is BUSL
# and not on the Go module proxy, so it is not built here). Outside CI a missing one only skips
# that leg; in CI it is an error, found before the long builds start.
newest_terraform() {
  local best="" bestv="" d v
  local IFS=:
  for d in $PATH; do
    [[ -x "${d:-.}/terraform" && ! -d "${d:-.}/terraform" ]] || continue
    v="$(CHECKPOINT_DISABLE=1 "${d:-.}/terraform" version 2>/dev/null | sed -n '1s/^Terraform v\([0-9][0-9.]*\).*/\1/p')" || continue
    [[ -n "$v" ]] || continue
    [[ "$(printf '%s\n1.6.0\n' "$v" | sort -V | head -n 1)" == 1.6.0 ]] || continue
    if [[ -z "$bestv" || "$(printf '%s\n%s\n' "$v" "$bestv" | sort -V | tail -n 1)" == "$v" && "$v" != "$bestv" ]]; then
      best="${d:-.}/terraform" bestv="$v"
    fi
  done
  [[ -n "$best" ]] && echo "$best"
}
if [[ -z "${PAVED_TERRAFORM_CURRENT:-}" ]]; then
  PAVED_TERRAFORM_CURRENT="$(newest_terraform)" || true
fi
if [[ -z "$PAVED_TERRAFORM_CURRENT" ]]; then
  if [[ "$in_ci" == 1 ]]; then
    echo "run.sh: CI=true but there is no Terraform >= 1.6 on PATH (the CLI matrix needs one; or set PAVED_TERRAFORM_CURRENT)" >&2
    exit 1
  fi
  echo "run.sh: no Terraform >= 1.6 on PATH: the acceptance tests' terraform-current leg will be skipped" >&2
fi

# OpenTofu, the matrix's third leg (~13 min cold on 2 cores, cached after that), builds in the
# background, at a lower priority, while setup, the control plane, the Crossplane tooling, the
# provider and `cargo test` go on; pytest waits for it. Its own process group, so an early exit
# stops it.
tofu_out="$(mktemp)" tofu_err="$(mktemp)"
setsid -w nice -n 10 bash "$here/tofu/build.sh" >"$tofu_out" 2>"$tofu_err" &
tofu_pid=$!
stop_tofu() {
  if kill -0 "$tofu_pid" 2>/dev/null; then kill -- "-$tofu_pid" 2>/dev/null || true; fi
  rm -f "$tofu_out" "$tofu_err"
}

# The static release binary (package/build-static.sh: musl, release profile) that
# test_release.py packages with package/release.sh builds in the background too, at the lowest
# priority, so it takes the CPU the other builds and then the tests leave. Its target directory
# is cached outside the repository per toolchain; a later run from the same checkout folder
# recompiles only paved (a checkout elsewhere changes the path-remapping flags, and with them
# every crate: ~34 CPU-minutes, overlapped with the tests). When it
# ends, PAVED_RELEASE_BIN_FILE holds the binary's path, or FAILED (the log is printed below).
rel_target="$cache/cargo-release/$(rustc --version | tr -c 'A-Za-z0-9.\n' '_')"
rel_log="$(mktemp)"
export PAVED_RELEASE_BIN_FILE="$rel_log.done"
setsid -w env PAVED_RELEASE_TARGET_DIR="$rel_target" nice -n 19 bash -c '
  set -o pipefail
  if bash "$1/package/build-static.sh" 2>"$2" | tail -n 1 >"$3.tmp"; then :; else echo FAILED >"$3.tmp"; fi
  mv -f "$3.tmp" "$3"' _ "$repo" "$rel_log" "$PAVED_RELEASE_BIN_FILE" &
rel_pid=$!
stop_release() {
  if kill -0 "$rel_pid" 2>/dev/null; then kill -- "-$rel_pid" 2>/dev/null || true; fi
  if grep -qx FAILED "$PAVED_RELEASE_BIN_FILE" 2>/dev/null; then
    echo "run.sh: the static release build failed:" >&2
    tail -n 40 "$rel_log" >&2
  fi
}

# Fuzz smoke (fuzz/run.sh): every cargo-fuzz target for PAVED_FUZZ_SMOKE_RUNS executions, built
# with nightly into a target directory cached outside the repository, in the background at the
# lowest priority like the static build; its result is checked after pytest. A cold fuzz build
# (no cache yet: ~15 CPU-minutes, one compiler process peaked at ~17 GB) starts once the
# static build is done.
fuzz_log="$(mktemp)"
setsid -w env PAVED_FUZZ_RUNS="${PAVED_FUZZ_SMOKE_RUNS:-20000}" \
  PAVED_FUZZ_COLD_WAIT_FILE="$PAVED_RELEASE_BIN_FILE" nice -n 19 \
  bash "$repo/fuzz/run.sh" >"$fuzz_log" 2>&1 &
fuzz_pid=$!
stop_fuzz() {
  if kill -0 "$fuzz_pid" 2>/dev/null; then kill -- "-$fuzz_pid" 2>/dev/null || true; fi
}
trap 'stop_tofu; stop_release; stop_fuzz' EXIT

bash "$here/setup.sh"

ls_started=0
if ! bash "$here/localstack.sh" status >/dev/null 2>&1; then ls_started=1; fi
bash "$here/localstack.sh" start
# The local Compute Engine API (gce.sh; tests: test_gce_server.py, tests/gce_client.rs).
gce_started=0
if ! bash "$here/gce.sh" status >/dev/null 2>&1; then gce_started=1; fi
gce_url="$(bash "$here/gce.sh" start | tail -n 1)"
PAVED_GCE_DISCOVERY="$(bash "$here/gce.sh" discovery)"
export PAVED_GCE_DISCOVERY
pg_started=0
if ! bash "$here/postgres.sh" status >/dev/null 2>&1; then pg_started=1; fi
pg_url="$(bash "$here/postgres.sh" start | tail -n 1)"
cleanup() {
  stop_tofu
  stop_release
  stop_fuzz
  if [ "$ls_started" = 1 ]; then bash "$here/localstack.sh" stop || true; fi
  if [ "$pg_started" = 1 ]; then bash "$here/postgres.sh" stop || true; fi
  if [ "$gce_started" = 1 ]; then bash "$here/gce.sh" stop || true; fi
  bash "$here/cluster/down.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash "$here/cluster/up.sh" >/dev/null
# The Crossplane CLI, core and function-patch-and-transform for the golden-path tests (cached).
bash "$here/xpcli/build.sh" >/dev/null

cd "$repo"
export PAVED_TEST_AWS_ENDPOINT="http://127.0.0.1:4566"
export PAVED_TEST_PG_URL="$pg_url"
export PAVED_TEST_GCE_ENDPOINT="$gce_url"
cargo build --locked --bins --tests
# Integration tests that need LocalStack or PostgreSQL are #[ignore]d for plain `cargo test`;
# the services are up here, so they run.
cargo test --locked -- --include-ignored

tofu_rc=0
wait "$tofu_pid" || tofu_rc=$?
cat "$tofu_err" >&2
if [[ "$tofu_rc" != 0 ]]; then
  echo "run.sh: the OpenTofu build failed (exit $tofu_rc)" >&2
  exit 1
fi
export PAVED_TERRAFORM="${PAVED_TERRAFORM:-$cache/bin/terraform}"
export PAVED_TERRAFORM_CURRENT
PAVED_TOFU="${PAVED_TOFU:-$(tail -n 1 "$tofu_out")/tofu}"
export PAVED_TOFU
# -rs lists skipped tests with their reasons (e.g. a CLI leg without its CLI).
"$cache/lsvenv/bin/python" -m pytest -v -rs "$here"

fuzz_rc=0
fuzz_t0=$SECONDS
wait "$fuzz_pid" || fuzz_rc=$?
echo "run.sh: fuzz smoke (waited $((SECONDS - fuzz_t0))s for it):" >&2
grep -v '^ *Compiling\|^ *Downloaded\|^ *Downloading' "$fuzz_log" | tail -n 40 >&2
if [[ "$fuzz_rc" != 0 ]]; then
  echo "run.sh: the fuzz smoke failed (exit $fuzz_rc)" >&2
  exit 1
fi
