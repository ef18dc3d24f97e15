#!/usr/bin/env bash
# build.sh — builds OpenTofu, the third CLI of the acceptance suite's matrix (see
# ../README.md, "CLI matrix"), from the Go module proxy, into a cache outside the repo:
#
#   ${PAVED_CACHE:-$HOME/.cache/paved}/tofu/<version>/bin/
#     tofu      OpenTofu CLI      (github.com/opentofu/opentofu/cmd/tofu, gomod/)
#
# Why a module of our own: `go install github.com/opentofu/opentofu/cmd/tofu@v1.12.6` is
# refused, because opentofu's go.mod has a replace directive (hcl/v2 => opentofu/hcl/v2)
# and `go install pkg@version` does not allow those. gomod/go.mod requires opentofu and
# repeats that replace and opentofu's godebug block (tlsmlkem=0, winsymlink=0; godebug
# settings only apply from the main module). When bumping OpenTofu, copy both again from
# the new version's go.mod (`go mod download -json github.com/opentofu/opentofu@vX.Y.Z`
# names it) and regenerate go.sum (`GOFLAGS=-mod=mod go mod tidy` in gomod/).
#
# The version comes from gomod/go.mod (go.sum is committed next to it). The binary is
# skipped when its cached copy exists and its stamp (.tofu.version) names the same
# module@version. -X .../version.dev=no makes `tofu version` say "OpenTofu v1.12.6" instead
# of "v1.12.6-dev", as release builds do. Go's own caches (GOMODCACHE, GOCACHE) stay where
# `go env` puts them. Needs Go >= 1.26.6 (opentofu v1.12.6's go.mod says go 1.26.6).
# A cold build takes ~13 minutes on 2 cores.
#
# Prints the bin directory on stdout when done (last line); progress and timings go to
# stderr and to <bin>/../build-times.txt.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"

die() { echo "tofu/build.sh: $*" >&2; exit 1; }
log() { echo "tofu/build.sh: $*" >&2; }

modver() { # modver <go.mod> <module>: the version required in that go.mod
  awk -v m="$2" '($1=="require" && $2==m) {print $3; exit} ($1==m) {print $2; exit}' "$1"
}
TOFU_VERSION="$(modver "$here/gomod/go.mod" github.com/opentofu/opentofu)"
[[ -n "$TOFU_VERSION" ]] || die "cannot read the opentofu version from gomod/go.mod"

BIN="$PAVED_CACHE/tofu/$TOFU_VERSION/bin"
TIMES="$PAVED_CACHE/tofu/$TOFU_VERSION/build-times.txt"
mkdir -p "$BIN"
# One build at a time per version (two test runs started together would race on tmp files).
exec 9>"$PAVED_CACHE/tofu/$TOFU_VERSION/.build.lock"
flock 9

# Static binary, no C toolchain needed; go.sum is complete, so -mod=readonly is enough
# (PAVED_GOFLAGS overrides, e.g. PAVED_GOFLAGS="-mod=mod -buildvcs=false").
export CGO_ENABLED=0
export GOFLAGS="${PAVED_GOFLAGS:--mod=readonly -buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

t_all=$SECONDS
build tofu "$here/gomod" github.com/opentofu/opentofu/cmd/tofu \
  "github.com/opentofu/opentofu@$TOFU_VERSION" \
  "-s -w -X github.com/opentofu/opentofu/version.dev=no"
# (an empty CLI config: the environment's TF_CLI_CONFIG_FILE may name a missing file)
tofu_version="$(TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 "$BIN/tofu" version | sed -n 1p)" \
  || die "$BIN/tofu does not run"
log "tofu: $tofu_version"
log "all binaries ready in $((SECONDS - t_all))s"
echo "$BIN"
