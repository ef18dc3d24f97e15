#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs Terraform 1.0.3 and LocalStack (setup.sh),
# builds the local Kubernetes control plane from Go modules (cluster/build.sh, cached by version),
# builds the Crossplane CLI tooling (xpcli/build.sh), starts LocalStack, PostgreSQL with pgvector
# (postgres.sh) and the control plane, builds the provider once (dev profile), runs
# `cargo test` (unit tests and the LocalStack-backed integration tests) and then the acceptance
# tests, which drive the real `terraform` binary against the provider binary that build produced.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="${PAVED_CACHE:-$HOME/.cache/paved}"

bash "$here/setup.sh"
ls_started=0
if ! bash "$here/localstack.sh" status >/dev/null 2>&1; then ls_started=1; fi
bash "$here/localstack.sh" start
pg_started=0
if ! bash "$here/postgres.sh" status >/dev/null 2>&1; then pg_started=1; fi
pg_url="$(bash "$here/postgres.sh" start | tail -n 1)"
cleanup() {
  if [ "$ls_started" = 1 ]; then bash "$here/localstack.sh" stop || true; fi
  if [ "$pg_started" = 1 ]; then bash "$here/postgres.sh" stop || true; fi
  bash "$here/cluster/down.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash "$here/cluster/up.sh" >/dev/null
# The Crossplane CLI, core and function-patch-and-transform for the golden-path tests (cached).
bash "$here/xpcli/build.sh" >/dev/null

cd "$repo"
export PAVED_TEST_AWS_ENDPOINT="http://127.0.0.1:4566"
export PAVED_TEST_PG_URL="$pg_url"
cargo build --locked --bins --tests
cargo test --locked -- --include-ignored
"$cache/lsvenv/bin/python" -m pytest -v "$here"
