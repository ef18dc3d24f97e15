#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs Terraform 1.0.3 and LocalStack (setup.sh),
# starts LocalStack, builds the provider once (dev profile), runs `cargo test` (unit tests and the
# LocalStack-backed integration tests) and then the acceptance tests, which drive the real
# `terraform` binary against the provider binary that build produced.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="${PAVED_CACHE:-$HOME/.cache/paved}"

bash "$here/setup.sh"
started_here=0
if ! bash "$here/localstack.sh" status >/dev/null 2>&1; then started_here=1; fi
bash "$here/localstack.sh" start
cleanup() { if [ "$started_here" = 1 ]; then bash "$here/localstack.sh" stop || true; fi; }
trap cleanup EXIT

cd "$repo"
export PAVED_TEST_AWS_ENDPOINT="http://127.0.0.1:4566"
cargo build --locked --bins --tests
cargo test --locked
"$cache/lsvenv/bin/python" -m pytest -v "$here"
