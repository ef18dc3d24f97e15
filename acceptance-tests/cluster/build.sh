#!/usr/bin/env bash
# build.sh — builds the binaries of the local Kubernetes control plane used by the
# acceptance tests, from the Go module proxy, into a cache outside the repo:
#
#   ${PAVED_CACHE:-$HOME/.cache/paved}/k8s/<k8s version>/bin/
#     kube-apiserver kube-controller-manager kube-scheduler kubectl   (k8s.io/kubernetes, gomod/k8s)
#     etcd                                                            (go.etcd.io/etcd/server/v3, gomod/etcd)
#     kwok                                                            (sigs.k8s.io/kwok/cmd/kwok, gomod/kwok)
#
# Versions come from the go.mod files under gomod/ (go.sum is committed next to each).
# A binary is skipped when its cached copy exists and its stamp (.<name>.version)
# names the same module@version. Go's own caches (GOMODCACHE, GOCACHE) stay where
# `go env` puts them, so a fresh machine downloads and compiles everything once.
# Needs Go >= 1.26 (kwok v0.8.0 declares go 1.26.0).
#
# Prints the bin directory on stdout when done; progress and timings go to stderr
# and to <bin>/../build-times.txt.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
PAVED_CACHE="${PAVED_CACHE:-$HOME/.cache/paved}"

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

modver() { # modver <go.mod> <module>: the version required in that go.mod
  awk -v m="$2" '($1=="require" && $2==m) {print $3; exit} ($1==m) {print $2; exit}' "$1"
}
K8S_VERSION="$(modver "$here/gomod/k8s/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(modver "$here/gomod/etcd/go.mod" go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(modver "$here/gomod/kwok/go.mod" sigs.k8s.io/kwok)"
[[ -n "$K8S_VERSION" && -n "$ETCD_VERSION" && -n "$KWOK_VERSION" ]] || die "cannot read versions from gomod/*/go.mod"

BIN="$PAVED_CACHE/k8s/$K8S_VERSION/bin"
TIMES="$PAVED_CACHE/k8s/$K8S_VERSION/build-times.txt"
mkdir -p "$BIN"
# One build at a time per version (two up.sh started together would race on the tmp files).
exec 9>"$PAVED_CACHE/k8s/$K8S_VERSION/.build.lock"
flock 9

# Static binaries, no C toolchain needed; go.sum is complete, so -mod=readonly is enough
# (PAVED_GOFLAGS overrides, e.g. PAVED_GOFLAGS="-mod=mod -buildvcs=false").
export CGO_ENABLED=0
export GOFLAGS="${PAVED_GOFLAGS:--mod=readonly -buildvcs=false}"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# Version stamping the way Kubernetes' hack/lib/version.sh does it, so /version and
# `kubectl version` report the real release instead of v0.0.0-master.
k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

# shellcheck source=../gobuild.sh
source "$here/../gobuild.sh"

t_all=$SECONDS
build etcd                    "$here/gomod/etcd" go.etcd.io/etcd/server/v3                      "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "-s -w"
build kwok                    "$here/gomod/kwok" sigs.k8s.io/kwok/cmd/kwok                      "sigs.k8s.io/kwok@$KWOK_VERSION"          "-s -w"
build kube-apiserver          "$here/gomod/k8s"  k8s.io/kubernetes/cmd/kube-apiserver           "k8s.io/kubernetes@$K8S_VERSION"          "$k8s_ldflags"
build kube-controller-manager "$here/gomod/k8s"  k8s.io/kubernetes/cmd/kube-controller-manager  "k8s.io/kubernetes@$K8S_VERSION"          "$k8s_ldflags"
build kube-scheduler          "$here/gomod/k8s"  k8s.io/kubernetes/cmd/kube-scheduler           "k8s.io/kubernetes@$K8S_VERSION"          "$k8s_ldflags"
build kubectl                 "$here/gomod/k8s"  k8s.io/kubernetes/cmd/kubectl                  "k8s.io/kubernetes@$K8S_VERSION"          "$k8s_ldflags"
log "all binaries ready in $((SECONDS - t_all))s"
echo "$BIN"
