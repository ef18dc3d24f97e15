#!/usr/bin/env bash
# build.sh — builds the Crossplane tooling used by the Crossplane golden-path tests
# (acceptance-tests/test_crossplane_examples.py, validate.sh), from the Go module proxy,
# into a cache outside the repo:
#
#   ${PAVED_CACHE:-$HOME/.cache/paved}/xpcli/<cli version>/bin/
#     crossplane                     Crossplane CLI       (github.com/crossplane/cli/v2/cmd/crossplane, gomod/crossplane)
#     crossplane-core                Crossplane core      (github.com/crossplane/crossplane/v2/cmd/crossplane, gomod/crossplane-core)
#     function-patch-and-transform   composition function (github.com/crossplane-contrib/function-patch-and-transform, gomod/function-patch-and-transform)
#   ${PAVED_CACHE:-$HOME/.cache/paved}/xpcli/<cli version>/crds/
#     Crossplane's own CRDs (Composition, CompositeResourceDefinition, Function, ...) from
#     the crossplane/v2 module's cluster/crds, and function-patch-and-transform's input CRD
#     (pt.fn.crossplane.io Resources) from its package/input: validate.sh checks the
#     examples' Compositions, XRDs, Functions and pipeline inputs against them, offline.
#
# Why three: since Crossplane v2.3 the CLI is its own module (crossplane/crossplane no
# longer has cmd/crank), and its `render` no longer embeds the composition engine: it
# runs `crossplane internal render` of the core binary, from a Docker image or, with
# --crossplane-binary PATH, from a local file — that is crossplane-core here. Functions
# run with the Development runtime: the test starts function-patch-and-transform with
# --insecure and points render at it.
#
# Versions come from the go.mod files under gomod/ (go.sum is committed next to each).
# A binary is skipped when its cached copy exists and its stamp (.<name>.version) names
# the same module@version. Go's own caches (GOMODCACHE, GOCACHE) stay where `go env`
# puts them. Needs Go >= 1.26 (the CLI's go.mod says go 1.26.0).
#
# Prints the bin directory on stdout when done (last line); progress and timings go to
# stderr and to <bin>/../build-times.txt.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"

die() { echo "xpcli/build.sh: $*" >&2; exit 1; }
log() { echo "xpcli/build.sh: $*" >&2; }

modver() { # modver <go.mod> <module>: the version required in that go.mod
  awk -v m="$2" '($1=="require" && $2==m) {print $3; exit} ($1==m) {print $2; exit}' "$1"
}
CLI_VERSION="$(modver "$here/gomod/crossplane/go.mod" github.com/crossplane/cli/v2)"
CORE_VERSION="$(modver "$here/gomod/crossplane-core/go.mod" github.com/crossplane/crossplane/v2)"
FPT_VERSION="$(modver "$here/gomod/function-patch-and-transform/go.mod" github.com/crossplane-contrib/function-patch-and-transform)"
[[ -n "$CLI_VERSION" && -n "$CORE_VERSION" && -n "$FPT_VERSION" ]] || die "cannot read versions from gomod/*/go.mod"

BIN="$PAVED_CACHE/xpcli/$CLI_VERSION/bin"
TIMES="$PAVED_CACHE/xpcli/$CLI_VERSION/build-times.txt"
mkdir -p "$BIN"
# One build at a time per version (two test runs started together would race on tmp files).
exec 9>"$PAVED_CACHE/xpcli/$CLI_VERSION/.build.lock"
flock 9

# Static binaries, no C toolchain needed; go.sum is complete, so -mod=readonly is enough
# (PAVED_GOFLAGS overrides, e.g. PAVED_GOFLAGS="-mod=mod -buildvcs=false").
export CGO_ENABLED=0
export GOFLAGS="${PAVED_GOFLAGS:--mod=readonly -buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

t_all=$SECONDS
build function-patch-and-transform "$here/gomod/function-patch-and-transform" \
  github.com/crossplane-contrib/function-patch-and-transform \
  "github.com/crossplane-contrib/function-patch-and-transform@$FPT_VERSION" "-s -w"
build crossplane-core "$here/gomod/crossplane-core" github.com/crossplane/crossplane/v2/cmd/crossplane \
  "github.com/crossplane/crossplane/v2@$CORE_VERSION" \
  "-s -w -X github.com/crossplane/crossplane-runtime/v2/pkg/version.version=$CORE_VERSION"
build crossplane "$here/gomod/crossplane" github.com/crossplane/cli/v2/cmd/crossplane \
  "github.com/crossplane/cli/v2@$CLI_VERSION" \
  "-s -w -X github.com/crossplane/crossplane-runtime/v2/pkg/version.version=$CLI_VERSION"
# copy_crds <module dir> <module path> <dir inside the module> <stamp>
CRDS="$PAVED_CACHE/xpcli/$CLI_VERSION/crds"
copy_crds() {
  local dir="$1" mod="$2" sub="$3" stamp="$4" name src
  name="$(basename "$sub")-${mod##*/}"
  if [[ -f "$CRDS/.$name.version" && "$(cat "$CRDS/.$name.version")" == "$stamp" ]]; then
    return 0
  fi
  src="$(cd "$dir" && go list -m -f '{{.Dir}}' "$mod")" || die "cannot locate $mod (module dir $dir)"
  [[ -d "$src/$sub" ]] || (cd "$dir" && go mod download "$mod") || die "cannot download $mod"
  mkdir -p "$CRDS"
  cp -f "$src/$sub"/*.yaml "$CRDS/"
  chmod u+w "$CRDS"/*.yaml
  echo "$stamp" >"$CRDS/.$name.version"
  log "CRDs of $stamp ($sub) copied to $CRDS"
}
copy_crds "$here/gomod/crossplane-core" github.com/crossplane/crossplane/v2 cluster/crds \
  "github.com/crossplane/crossplane/v2@$CORE_VERSION"
copy_crds "$here/gomod/function-patch-and-transform" github.com/crossplane-contrib/function-patch-and-transform \
  package/input "github.com/crossplane-contrib/function-patch-and-transform@$FPT_VERSION"
log "all binaries ready in $((SECONDS - t_all))s"
echo "$BIN"
