#!/usr/bin/env python3
"""Terraform/OpenTofu release artifacts from one binary, byte-for-byte reproducible:

  dist/terraform-provider-paved_VERSION_linux_amd64.zip   the binary as terraform-provider-paved_vVERSION
  dist/terraform-provider-paved_VERSION_manifest.json     the registry manifest, as registries want it named
  dist/terraform-registry-manifest.json                   the same content (goreleaser's source name)
  dist/terraform-provider-paved_VERSION_SHA256SUMS        sha256 of the zip and the manifest
  dist/mirror/HOST/paved/paved/                           for registry.terraform.io and registry.opentofu.org:
      terraform-provider-paved_VERSION_linux_amd64.zip     packed filesystem_mirror layout
      index.json, VERSION.json                              network_mirror protocol (served over HTTP as is)

Reproducible: one fixed timestamp (SOURCE_DATE_EPOCH, the commit time), fixed permissions, a
single entry, deflate at a fixed level, JSON with sorted keys.
"""
import argparse
import hashlib
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

HOSTS = ("registry.terraform.io", "registry.opentofu.org")
NAMESPACE, TYPE = "paved", "paved"
PLATFORM = "linux_amd64"
MANIFEST = {"version": 1, "metadata": {"protocol_versions": ["6.0"]}}


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def zip_date(epoch: int):
    # ZIP stores local time with 2-second resolution from 1980; use UTC for a fixed result.
    t = time.gmtime(max(epoch, 315532800))
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec - t.tm_sec % 2)


def write_zip(path: Path, binary: Path, version: str, epoch: int) -> None:
    info = zipfile.ZipInfo(f"terraform-provider-{TYPE}_v{version}", date_time=zip_date(epoch))
    info.create_system = 3  # Unix, so the mode below is honoured
    info.external_attr = (0o100755 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as z:
        with open(binary, "rb") as f:
            z.writestr(info, f.read(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_mirror(dist: Path, zip_path: Path, version: str, digest: str) -> None:
    for host in HOSTS:
        d = dist / "mirror" / host / NAMESPACE / TYPE
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(zip_path, d / zip_path.name)
        (d / "index.json").write_text(dumps({"versions": {version: {}}}))
        (d / f"{version}.json").write_text(dumps({"archives": {PLATFORM: {
            "url": zip_path.name, "hashes": [f"zh:{digest}"]}}}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True, type=Path)
    ap.add_argument("--version", required=True)
    ap.add_argument("--dist", required=True, type=Path)
    a = ap.parse_args()
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    a.dist.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(a.dist / "mirror", ignore_errors=True)
    base = f"terraform-provider-{TYPE}_{a.version}"
    zip_path = a.dist / f"{base}_{PLATFORM}.zip"
    write_zip(zip_path, a.binary, a.version, epoch)
    manifest_text = json.dumps(MANIFEST, separators=(",", ":")) + "\n"
    (a.dist / "terraform-registry-manifest.json").write_text(manifest_text)
    named_manifest = a.dist / f"{base}_manifest.json"
    named_manifest.write_text(manifest_text)
    sums = {p.name: sha256(p) for p in (zip_path, named_manifest)}
    (a.dist / f"{base}_SHA256SUMS").write_text("".join(f"{h}  {n}\n" for n, h in sorted(sums.items())))
    write_mirror(a.dist, zip_path, a.version, sums[zip_path.name])
    print(f"{zip_path} sha256={sums[zip_path.name]}")


if __name__ == "__main__":
    main()
