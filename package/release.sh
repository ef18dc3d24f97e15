#!/usr/bin/env bash
# release.sh [VERSION] — every release artifact of paved, into dist/:
#
#   terraform-provider-paved_VERSION_linux_amd64.zip    the provider (binary terraform-provider-paved_vVERSION)
#   terraform-provider-paved_VERSION_SHA256SUMS         checksums of the zip and the manifest
#   terraform-provider-paved_VERSION_manifest.json      registry manifest (protocol 6.0) …
#   terraform-registry-manifest.json                    … and the same under its source name
#   mirror/                                             a provider mirror for Terraform and OpenTofu
#                                                       (filesystem_mirror, or network_mirror over HTTP)
#   provider-paved-VERSION-image.tar                    controller image: OCI layout + docker-save archive
#   provider-paved-VERSION.xpkg                         Crossplane package with that image embedded
#
# VERSION defaults to Cargo.toml's. One static binary (x86_64-unknown-linux-musl, release
# profile, reproducible: see build-static.sh) goes into both the zip and the image; set
# PAVED_RELEASE_BIN=/path/to/binary to package a prebuilt one instead of building. Two runs
# from the same commit give identical zip and image digests. The Crossplane CLI comes from
# PAVED_CROSSPLANE, else the one acceptance-tests/xpcli/build.sh builds (cached).
#
# Prints `key=value` lines at the end (paths, sha256, sizes) for scripts and tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
dist="${PAVED_DIST:-$repo/dist}"
log() { echo "release.sh: $*" >&2; }
die() { log "$*"; exit 1; }

cargo_version="$(sed -n '/^\[package\]/,/^\[/{s/^version *= *"\(.*\)"/\1/p}' "$repo/Cargo.toml" | head -n1)"
version="${1:-$cargo_version}"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$ ]] || die "version $version is not semver (X.Y.Z)"
[ "$version" = "$cargo_version" ] || log "note: packaging version $version, Cargo.toml says $cargo_version (--version prints the latter)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}"
python="${PAVED_PYTHON:-python3}"

if [ -n "${PAVED_RELEASE_BIN:-}" ]; then
  bin="$PAVED_RELEASE_BIN"
  log "packaging prebuilt $bin"
else
  bin="$(bash "$here/build-static.sh" | tail -n 1)"
fi
[ -x "$bin" ] || die "no executable binary at $bin"
"$python" "$here/elfcheck.py" "$bin" || die "$bin is not a static executable: build it with package/build-static.sh"

mkdir -p "$dist"
"$python" "$here/artifacts.py" --binary "$bin" --version "$version" --dist "$dist" >&2

# The image: CA bundle from Debian's ca-certificates package.
ca=/etc/ssl/certs/ca-certificates.crt
if [ ! -s "$ca" ]; then
  command -v apt-get >/dev/null || die "$ca missing: install ca-certificates"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ca-certificates >&2
fi
image="$dist/provider-paved-$version-image.tar"
ref="ghcr.io/paved/provider-paved:v$version"
image_info="$("$python" "$here/oci_image.py" --binary "$bin" --ca-bundle "$ca" --version "$version" --ref "$ref" --out "$image")"

# The Crossplane package: package/crossplane.yaml + package/crds, runtime image embedded.
xp="${PAVED_CROSSPLANE:-}"
if [ -z "$xp" ]; then
  xp="$(bash "$repo/acceptance-tests/xpcli/build.sh" | tail -n 1)/crossplane"
fi
[ -x "$xp" ] || die "Crossplane CLI not found at $xp"
xpkg="$dist/provider-paved-$version.xpkg"
rm -f "$xpkg"
# Only crossplane.yaml and crds/ belong in the package: xpkg build reads every YAML file under
# the root, so the plain install manifests in rbac/ are left out (scripts are not YAML).
# From package/, whose ./examples does not exist: xpkg build's --examples-root defaults to
# ./examples, and the repository's examples/ are Terraform and Backstage files, not package
# examples.
(cd "$here" && "$xp" xpkg build --package-root "$here" --ignore 'rbac/*' \
  --embed-runtime-image-tarball "$image" -o "$xpkg" >&2)

zip="$dist/terraform-provider-paved_${version}_linux_amd64.zip"
echo "version=$version"
echo "binary=$bin"
echo "binary_sha256=$(sha256sum "$bin" | cut -d' ' -f1)"
echo "binary_size=$(stat -c %s "$bin")"
echo "zip=$zip"
echo "zip_sha256=$(sha256sum "$zip" | cut -d' ' -f1)"
echo "sha256sums=$dist/terraform-provider-paved_${version}_SHA256SUMS"
echo "mirror=$dist/mirror"
echo "image=$image"
echo "image_info=$image_info"
echo "image_size=$(stat -c %s "$image")"
echo "xpkg=$xpkg"
echo "xpkg_size=$(stat -c %s "$xpkg")"
