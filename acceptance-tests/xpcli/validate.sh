#!/usr/bin/env bash
# validate.sh — checks the Crossplane golden paths (examples/crossplane, and the claims of
# the Backstage template in examples/backstage) with the real Crossplane CLI, offline:
#
#   1. builds the CLI, Crossplane core and function-patch-and-transform (build.sh, cached);
#   2. `crossplane resource validate` of the XRDs, Compositions (and their pipeline inputs),
#      Functions, ProviderConfig and claims against the XRDs, paved's CRDs
#      (package/crds, or $PAVED_CRDS_DIR), Crossplane's CRDs and the function's input CRD;
#   3. starts function-patch-and-transform on a free 127.0.0.1 port (--insecure) and, for each
#      claim, `crossplane xr generate` + `crossplane composition render --crossplane-binary
#      crossplane-core` (Development runtime, target given with --function-annotations);
#      ml-inference is rendered a second time with observed resources, so the IDs paved
#      reports flow into the endpoint;
#   4. `crossplane resource validate` of everything rendered against the same schemas.
#
# Managed-resource kinds whose CRD is not in package/crds yet are listed and not validated;
# PAVED_REQUIRE_ALL_CRDS=1 makes that a failure. Exit status 0 when everything validated.
#
# Usage: bash acceptance-tests/xpcli/validate.sh [OUT_DIR]   (default: a new temp dir)
# The rendered YAML stays in OUT_DIR/rendered/ for reading.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"
PYTHON="${PAVED_XP_PYTHON:-$PAVED_CACHE/lsvenv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON=python3
"$PYTHON" -c 'import yaml' 2>/dev/null || { echo "validate.sh: $PYTHON lacks PyYAML (run acceptance-tests/setup.sh)" >&2; exit 1; }
out="${1:-$(mktemp -d "${TMPDIR:-/tmp}/paved-xpcli.XXXXXX")}"
PAVED_XPCLI_BIN="$(bash "$here/build.sh")"
export PAVED_XPCLI_BIN
exec "$PYTHON" "$here/xpcli.py" "$out"
