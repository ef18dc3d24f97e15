#!/usr/bin/env python3
"""The controller's runtime image, written without Docker or any base image: one layer with

  /terraform-provider-paved            the static release binary (0755)
  /etc/ssl/certs/ca-certificates.crt   CA bundle (Debian's ca-certificates package)
  /etc/passwd, /etc/group              a non-root user and group `paved`, uid/gid 65532

and a config running `USER 65532`, entrypoint ["/terraform-provider-paved", "crossplane"].

The output is one tarball that is both an OCI image layout (oci-layout, index.json,
blobs/sha256/...) and a `docker save` archive (manifest.json naming the config and layer by
their blob paths): the layout Docker itself writes since v25. OCI tools read the former;
`crossplane xpkg build --embed-runtime-image-tarball` (go-containerregistry's tarball package)
and `docker load` read the latter. Everything is deterministic (sorted entries, uid/gid 0,
fixed mtimes from SOURCE_DATE_EPOCH, gzip without timestamp), so a commit gives one digest.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import tarfile
import time
from pathlib import Path

UID = 65532
BINARY = "terraform-provider-paved"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_INDEX = "application/vnd.oci.image.index.v1+json"


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


class DeterministicTar:
    """A tar built in memory with fixed owners and times, entries in the order added."""

    def __init__(self, mtime: int):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.mtime = mtime

    def _info(self, name: str, type_, mode: int, uid=0, gid=0) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = type_, mode, uid, gid, "", ""
        ti.mtime = self.mtime
        return ti

    def dir(self, name: str, mode=0o755):
        self.tar.addfile(self._info(name + "/", tarfile.DIRTYPE, mode))

    def file(self, name: str, data: bytes, mode=0o644):
        ti = self._info(name, tarfile.REGTYPE, mode)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def bytes(self) -> bytes:
        self.tar.close()
        return self.buf.getvalue()


def rootfs_layer(binary: bytes, ca_bundle: bytes, mtime: int) -> bytes:
    t = DeterministicTar(mtime)
    t.dir("etc")
    t.file("etc/group", f"root:x:0:\npaved:x:{UID}:\n".encode())
    t.file("etc/passwd", f"root:x:0:0:root:/root:/sbin/nologin\n"
                         f"paved:x:{UID}:{UID}:paved:/nonexistent:/sbin/nologin\n".encode())
    t.dir("etc/ssl")
    t.dir("etc/ssl/certs")
    t.file(CA_BUNDLE, ca_bundle)
    t.file(BINARY, binary, mode=0o755)
    return t.bytes()


def build(binary: Path, ca_bundle: Path, version: str, ref: str, out: Path, epoch: int) -> dict:
    layer = rootfs_layer(binary.read_bytes(), ca_bundle.read_bytes(), epoch)
    # mtime=0 keeps the gzip header free of a timestamp.
    layer_gz = gzip.compress(layer, compresslevel=9, mtime=0)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    labels = {
        "org.opencontainers.image.title": "provider-paved",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.source": "https://github.com/paved/paved",
        "org.opencontainers.image.licenses": "MPL-2.0",
    }
    config = canonical({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{UID}:{UID}",
            "Entrypoint": [f"/{BINARY}", "crossplane"],
            "Env": [f"SSL_CERT_FILE=/{CA_BUNDLE}"],
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [sha(layer)]},
        "history": [{"created": created, "created_by": "package/oci_image.py"}],
    })
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": MT_LAYER, "digest": sha(layer_gz), "size": len(layer_gz)}],
        "annotations": {"org.opencontainers.image.created": created, **labels},
    })
    tag = ref.rsplit(":", 1)[1]
    index = canonical({
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [{"mediaType": MT_MANIFEST, "digest": sha(manifest), "size": len(manifest),
                       "annotations": {"org.opencontainers.image.ref.name": tag,
                                       "io.containerd.image.name": ref}}],
    })
    blob = lambda d: "blobs/sha256/" + d.split(":", 1)[1]
    docker_manifest = canonical([{"Config": blob(sha(config)), "RepoTags": [ref],
                                  "Layers": [blob(sha(layer_gz))]}])
    t = DeterministicTar(epoch)
    t.dir("blobs")
    t.dir("blobs/sha256")
    for b in sorted([config, manifest, layer_gz], key=sha):
        t.file(blob(sha(b)), b)
    t.file("index.json", index)
    t.file("manifest.json", docker_manifest)
    t.file("oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))
    out.write_bytes(t.bytes())
    return {"ref": ref, "manifest": sha(manifest), "config": sha(config), "layer": sha(layer_gz),
            "diff_id": sha(layer), "size": out.stat().st_size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True, type=Path)
    ap.add_argument("--ca-bundle", default=Path("/etc/ssl/certs/ca-certificates.crt"), type=Path)
    ap.add_argument("--version", required=True)
    ap.add_argument("--ref", required=True, help="image reference, e.g. ghcr.io/paved/provider-paved:v0.1.0")
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()
    info = build(a.binary, a.ca_bundle, a.version, a.ref, a.out, int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    print(json.dumps(info, sort_keys=True))


if __name__ == "__main__":
    main()
