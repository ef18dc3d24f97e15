#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs Terraform 1.0.3 and LocalStack (setup.sh),
# builds OpenTofu from Go modules (tofu/build.sh, in the background while the rest goes on),
# builds the local Kubernetes control plane from Go modules (cluster/build.sh, cached by version),
# builds the Crossplane CLI tooling (xpcli/build.sh), starts LocalStack, PostgreSQL with pgvector
# (postgres.sh) and the control plane, builds the provider once (the static release binary
# that ships, and the test binaries with the same profile and flags), runs `cargo test` (unit
# tests and the LocalStack-backed integration tests) and then the acceptance tests, which drive
# the real CLIs against that binary, on a matrix:
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

# The provider, one profile built once: package/static-cargo.sh (static musl, release profile,
# the reproducible flags) builds the shipped binary and then the test binaries, in the
# background from the start: it is the longest job (a cold build is ~35 CPU-minutes) and
# `cargo test` waits for it. The acceptance tests drive that very binary, and test_release.py
# packages it. Its target directory is cached outside the repository per toolchain (a checkout
# in another folder changes the path-remapping flags, and with them every crate). When it
# ends, $build_done holds the binary's path, or FAILED (the log is printed).
rel_target="$cache/cargo-release/$(rustc --version | tr -c 'A-Za-z0-9.\n' '_')"
build_log="$(mktemp)"
build_done="$build_log.done"
setsid -w env PAVED_RELEASE_TARGET_DIR="$rel_target" PAVED_STATIC_NICE=0 bash -c '
  set -o pipefail
  t0=$SECONDS
  if bin="$(bash "$1/package/build-static.sh" 2>>"$2" | tail -n 1)" &&
    bash "$1/package/static-cargo.sh" test --locked --no-run >>"$2" 2>&1; then
    echo "run.sh: provider and test binaries built in $((SECONDS - t0))s" >>"$2"
    echo "$bin" >"$3.tmp"
  else
    echo FAILED >"$3.tmp"
  fi
  mv -f "$3.tmp" "$3"' _ "$repo" "$build_log" "$build_done" &
build_pid=$!
stop_build() {
  if kill -0 "$build_pid" 2>/dev/null; then kill -- "-$build_pid" 2>/dev/null || true; fi
}

# Fuzz smoke (fuzz/run.sh): every cargo-fuzz target for PAVED_FUZZ_SMOKE_RUNS executions, built
# with nightly into a target directory cached outside the repository, in the background at the
# lowest priority; its result is checked after pytest. Its build starts once the provider's is
# done, so two compilations of the AWS SDK never share the memory.
fuzz_log="$(mktemp)"
setsid -w env PAVED_FUZZ_RUNS="${PAVED_FUZZ_SMOKE_RUNS:-20000}" \
  PAVED_FUZZ_WAIT_FILE="$build_done" nice -n 19 \
  bash "$repo/fuzz/run.sh" >"$fuzz_log" 2>&1 &
fuzz_pid=$!
stop_fuzz() {
  if kill -0 "$fuzz_pid" 2>/dev/null; then kill -- "-$fuzz_pid" 2>/dev/null || true; fi
}
trap 'stop_tofu; stop_build; stop_fuzz' EXIT

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
  stop_build
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
build_t0=$SECONDS
while [[ ! -e "$build_done" ]]; do
  kill -0 "$build_pid" 2>/dev/null || break
  sleep 2
done
bin="$(cat "$build_done" 2>/dev/null || echo FAILED)"
if [[ "$bin" == FAILED ]]; then
  echo "run.sh: the provider build (package/static-cargo.sh) failed:" >&2
  grep -v '^ *Compiling\|^ *Downloaded\|^ *Downloading' "$build_log" | tail -n 60 >&2
  exit 1
fi
echo "run.sh: waited $((SECONDS - build_t0))s for the provider build; $(tail -n 1 "$build_log" | sed 's/^run.sh: //')" >&2
export PAVED_PROVIDER_BIN="$bin" PAVED_RELEASE_BIN="$bin"
# Integration tests that need LocalStack or PostgreSQL are #[ignore]d for plain `cargo test`;
# the services are up here, so they run.
PAVED_RELEASE_TARGET_DIR="$rel_target" PAVED_STATIC_NICE=0 \
  bash package/static-cargo.sh test --locked -- --include-ignored

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
