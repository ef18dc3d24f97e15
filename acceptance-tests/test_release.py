"""Release artifacts as the people they are for install them: `bash package/release.sh`, then
`terraform init` (Terraform 1.0.3, the current Terraform, OpenTofu) from the provider mirror it
writes (on disk and served over HTTPS), with no dev_overrides; the lock file's h1: hash checked
against an independent computation from the zip SHA256SUMS names, a lock seeded with the zh:
hash from SHA256SUMS verified by init (and a wrong one refused); a plan of examples/gpu_compute_pool (offline); a second release run
byte-identical; the controller image read as an OCI layout (the binary inside is the released
one and runs); the Crossplane package checked by the real Crossplane CLI.

The release binary is built once per session: by run.sh, which runs every test on it and sets
PAVED_RELEASE_BIN, else by release.sh itself."""
import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import ssl
import subprocess
import tarfile
import threading
import time
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import CACHE, REPO

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
VERSION = re.search(r'(?m)^version\s*=\s*"([^"]+)"', (REPO / "Cargo.toml").read_text()).group(1)
CLIS = {
    "terraform-1.0.3": Path(os.environ.get("PAVED_TERRAFORM", CACHE / "bin" / "terraform")),
    "terraform-current": Path(os.environ.get("PAVED_TERRAFORM_CURRENT", "/usr/local/bin/terraform")),
    "opentofu": Path(os.environ.get("PAVED_TOFU", CACHE / "tofu" / "v1.12.6" / "bin" / "tofu")),
}
# What each CLI calls `paved/paved` when it expands the short source address.
HOST = {"terraform-1.0.3": "registry.terraform.io", "terraform-current": "registry.terraform.io",
        "opentofu": "registry.opentofu.org"}
XP = Path(os.environ.get("PAVED_CROSSPLANE", CACHE / "xpcli" / "v2.5.0" / "bin" / "crossplane"))


def prebuilt_binary():
    """The static binary run.sh builds in the background (PAVED_RELEASE_BIN_FILE names the file
    that gets its path when done), so release.sh only packages it; None outside run.sh."""
    done = os.environ.get("PAVED_RELEASE_BIN_FILE")
    if not done or os.environ.get("PAVED_RELEASE_BIN"):
        return os.environ.get("PAVED_RELEASE_BIN")
    deadline = time.monotonic() + 3600
    while not Path(done).exists():
        assert time.monotonic() < deadline, "the background static release build did not finish in an hour"
        time.sleep(5)
    path = Path(done).read_text().strip()
    assert path != "FAILED", "the background static release build (package/build-static.sh) failed; run.sh prints its log"
    return path


def run_release(dist: Path) -> dict:
    env = dict(os.environ, PAVED_DIST=str(dist))
    binary = prebuilt_binary()
    if binary:
        env["PAVED_RELEASE_BIN"] = binary
    p = subprocess.run(["bash", str(REPO / "package" / "release.sh")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=3600)
    assert p.returncode == 0, f"release.sh failed ({p.returncode}):\n{p.stderr[-6000:]}\n{p.stdout}"
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


@pytest.fixture(scope="session")
def release():
    """`bash package/release.sh` into dist/, as documented."""
    return run_release(REPO / "dist")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def h1_of_zip(path: Path) -> str:
    """Terraform's `h1:` package hash (dirhash Hash1 over the archive's files), computed here
    independently of Terraform so the lock file is checked against the artifact itself."""
    with zipfile.ZipFile(path) as z:
        lines = "".join(f"{hashlib.sha256(z.read(n)).hexdigest()}  {n}\n"
                        for n in sorted(i.filename for i in z.infolist() if not i.is_dir()))
    return "h1:" + base64.b64encode(hashlib.sha256(lines.encode()).digest()).decode()


def sums(release) -> dict:
    text = Path(release["sha256sums"]).read_text()
    return {name: h for h, name in (line.split("  ") for line in text.splitlines())}


def cli(name: str) -> Path:
    path = CLIS[name]
    if not path.exists():
        if CI:
            pytest.fail(f"{name} not installed at {path} (required in CI)")
        pytest.skip(f"{name} not installed at {path}: skipped outside CI")
    return path


def configuration(tmp_path: Path) -> Path:
    """examples/gpu_compute_pool with the provider pinned to the released version."""
    d = tmp_path / "gpu_compute_pool"
    shutil.copytree(REPO / "examples" / "gpu_compute_pool", d)
    main = d / "main.tf"
    text = main.read_text()
    pinned = text.replace('source = "paved/paved"', f'source  = "paved/paved"\n      version = "{VERSION}"', 1)
    assert pinned != text, "examples/gpu_compute_pool no longer declares paved/paved"
    main.write_text(pinned)
    return d


def cli_config(tmp_path: Path, block: str) -> Path:
    rc = tmp_path / "release.tfrc"
    rc.write_text("provider_installation {\n" + block + "\n}\n")
    assert "dev_overrides" not in rc.read_text()
    return rc


def run(binary: Path, args, cwd: Path, rc: Path, extra_env=None, check=True):
    env = dict(os.environ, TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1",
               AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               TF_PLUGIN_CACHE_DIR="", **(extra_env or {}))
    for k in ("TF_LOG", "TF_PLUGIN_CACHE_DIR", "TF_REATTACH_PROVIDERS"):
        env.pop(k, None)
    p = subprocess.run([str(binary), *args, "-no-color"], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=600)
    out = p.stdout + p.stderr
    if check:
        assert p.returncode == 0, f"{binary.name} {' '.join(args)} failed ({p.returncode}):\n{out}"
    assert "panic" not in out.lower() and "plugin crashed" not in out.lower(), out
    return p.returncode, out


def lock_hashes(workdir: Path, host: str) -> tuple[str, list[str]]:
    text = (workdir / ".terraform.lock.hcl").read_text()
    m = re.search(r'provider "' + re.escape(f"{host}/paved/paved") + r'" \{(.*?)\n\}', text, re.S)
    assert m, f"no lock entry for {host}/paved/paved:\n{text}"
    body = m.group(1)
    version = re.search(r'version\s*=\s*"([^"]+)"', body).group(1)
    return version, re.findall(r'"((?:h1|zh):[^"]+)"', body)


@pytest.mark.parametrize("name", list(CLIS))
def test_init_from_the_filesystem_mirror_and_plan(release, tmp_path, name):
    binary = cli(name)
    host = HOST[name]
    mirror = Path(release["mirror"])
    zip_name = f"terraform-provider-paved_{VERSION}_linux_amd64.zip"
    rc = cli_config(tmp_path, f'  filesystem_mirror {{\n    path    = "{mirror}"\n'
                              f'    include = ["{host}/paved/paved"]\n  }}\n'
                              f'  direct {{\n    exclude = ["{host}/paved/paved"]\n  }}')
    work = configuration(tmp_path)
    _, out = run(binary, ["init", "-input=false"], work, rc)
    assert f"paved/paved v{VERSION}" in out, out
    version, hashes = lock_hashes(work, host)
    assert version == VERSION
    zip_path = mirror / host / "paved" / "paved" / zip_name
    assert h1_of_zip(zip_path) in hashes, (hashes, h1_of_zip(zip_path))

    # `providers lock` against the same mirror keeps exactly that hash (a mirror has no signed
    # checksums, so the CLIs record only what they computed).
    run(binary, ["providers", "lock", f"-fs-mirror={mirror}", "-platform=linux_amd64"], work, rc)
    assert h1_of_zip(zip_path) in lock_hashes(work, host)[1]
    assert sums(release)[zip_name] == sha256(release["zip"]) == sha256(zip_path)

    # A lock file seeded from SHA256SUMS (the zh: hash, as a team pins a release it got outside
    # a registry) is verified by init against the package, and a wrong one refused.
    for good in (False, True):  # the good one last: plan uses what it installs
        shutil.rmtree(work / ".terraform", ignore_errors=True)
        zh = sums(release)[zip_name] if good else "0" * 64
        (work / ".terraform.lock.hcl").write_text(
            f'provider "{host}/paved/paved" {{\n  version     = "{VERSION}"\n  constraints = "{VERSION}"\n'
            f'  hashes = [\n    "zh:{zh}",\n  ]\n}}\n')
        code, out = run(binary, ["init", "-input=false"], work, rc, check=False)
        if good:
            assert code == 0, out
            assert set(lock_hashes(work, host)[1]) == {f"zh:{zh}", h1_of_zip(zip_path)}
        else:
            assert code != 0 and "match any of the checksums" in " ".join(out.split()), out

    # The installed provider plans the example with no cloud reachable.
    code, out = run(binary, ["plan", "-input=false", "-detailed-exitcode", "-var",
                             "aws_endpoint=http://127.0.0.1:9"], work, rc, check=False)
    assert code == 2 and "1 to add" in out, out


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def https_mirror(release, tmp_path):
    """dist/mirror served over HTTPS on 127.0.0.1 (network_mirror requires https) with a
    throwaway CA the CLIs trust through SSL_CERT_FILE."""
    key, crt = tmp_path / "key.pem", tmp_path / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=release["mirror"]))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"https://127.0.0.1:{srv.server_address[1]}/", crt
    srv.shutdown()


@pytest.mark.parametrize("name", list(CLIS))
def test_init_from_the_network_mirror(release, https_mirror, tmp_path, name):
    binary = cli(name)
    host = HOST[name]
    url, ca = https_mirror
    rc = cli_config(tmp_path, f'  network_mirror {{\n    url     = "{url}"\n'
                              f'    include = ["{host}/paved/paved"]\n  }}')
    work = configuration(tmp_path)
    _, out = run(binary, ["init", "-input=false"], work, rc, extra_env={"SSL_CERT_FILE": str(ca)})
    assert f"paved/paved v{VERSION}" in out, out
    # The download is checked against the zh: hash in VERSION.json (the SHA256SUMS line) ...
    assert "verified checksum" in out, out
    # ... and the lock records the h1: hash of the package that hash names (OpenTofu also
    # records the mirror's zh: hash; Terraform does not, lacking a registry signature).
    zip_name = f"terraform-provider-paved_{VERSION}_linux_amd64.zip"
    hashes = set(lock_hashes(work, host)[1])
    assert h1_of_zip(release["zip"]) in hashes, hashes
    assert hashes <= {h1_of_zip(release["zip"]), f"zh:{sums(release)[zip_name]}"}, hashes


def test_release_is_reproducible(release, tmp_path):
    again = run_release(tmp_path / "dist")
    assert again["zip_sha256"] == release["zip_sha256"]
    assert again["binary_sha256"] == release["binary_sha256"]
    assert sha256(again["image"]) == sha256(release["image"])
    assert json.loads(again["image_info"])["manifest"] == json.loads(release["image_info"])["manifest"]
    a, b = Path(release["mirror"]), Path(again["mirror"])
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert len(files) == 6, files  # zip, index.json, VERSION.json for each of the two hosts
    for f in files:
        assert sha256(a / f) == sha256(b / f), f
    assert Path(release["sha256sums"]).read_text() == Path(again["sha256sums"]).read_text()


def test_artifacts_are_what_registries_expect(release):
    dist = Path(release["zip"]).parent
    assert json.loads((dist / "terraform-registry-manifest.json").read_text()) == \
        {"version": 1, "metadata": {"protocol_versions": ["6.0"]}}
    with zipfile.ZipFile(release["zip"]) as z:
        [info] = z.infolist()
        assert info.filename == f"terraform-provider-paved_v{VERSION}"
        assert (info.external_attr >> 16) & 0o777 == 0o755
        assert hashlib.sha256(z.read(info)).hexdigest() == release["binary_sha256"]
    s = sums(release)
    assert set(s) == {Path(release["zip"]).name, f"terraform-provider-paved_{VERSION}_manifest.json"}
    for host in ("registry.terraform.io", "registry.opentofu.org"):
        d = Path(release["mirror"]) / host / "paved" / "paved"
        assert json.loads((d / "index.json").read_text()) == {"versions": {VERSION: {}}}
        arch = json.loads((d / f"{VERSION}.json").read_text())["archives"]["linux_amd64"]
        assert arch["hashes"] == [f"zh:{release['zip_sha256']}"] and (d / arch["url"]).is_file()
    # Static: the same file runs in the scratch image and on any Linux.
    p = subprocess.run([sys_python(), str(REPO / "package" / "elfcheck.py"), release["binary"]],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_binary_embeds_no_build_paths(release):
    """Reproducible from any checkout: the checkout, the cargo registry and the toolchain are
    remapped, so none of those absolute paths is in the binary."""
    data = Path(release["binary"]).read_bytes()
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True).stdout.strip()
    cargo_home = os.environ.get("CARGO_HOME", str(Path.home() / ".cargo"))
    for path in {str(REPO), cargo_home, sysroot} - {""}:
        assert path.encode() not in data, f"{path} is embedded in the release binary"


def sys_python():
    import sys
    return sys.executable


def read_image(path: Path):
    """Reads the image tarball as an OCI image layout: index → manifest → config, layers."""
    with tarfile.open(path) as t:
        blob = lambda d: t.extractfile("blobs/sha256/" + d.split(":", 1)[1]).read()
        assert json.loads(t.extractfile("oci-layout").read()) == {"imageLayoutVersion": "1.0.0"}
        index = json.loads(t.extractfile("index.json").read())
        [desc] = index["manifests"]
        raw = blob(desc["digest"])
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == desc["digest"]
        manifest = json.loads(raw)
        config = json.loads(blob(manifest["config"]["digest"]))
        layers = []
        for i, l in enumerate(manifest["layers"]):
            data = blob(l["digest"])
            assert "sha256:" + hashlib.sha256(data).hexdigest() == l["digest"] and len(data) == l["size"]
            tar_bytes = gzip.decompress(data)
            assert "sha256:" + hashlib.sha256(tar_bytes).hexdigest() == config["rootfs"]["diff_ids"][i]
            layers.append(tarfile.open(fileobj=io.BytesIO(tar_bytes)))
        docker = json.loads(t.extractfile("manifest.json").read())
    return desc, config, layers, docker


def test_image_holds_exactly_the_released_binary(release, tmp_path):
    desc, config, layers, docker = read_image(Path(release["image"]))
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == f"v{VERSION}"
    c = config["config"]
    assert c["User"] == "65532:65532"
    assert c["Entrypoint"] == ["/terraform-provider-paved", "crossplane"]
    assert config["os"] == "linux" and config["architecture"] == "amd64"
    [layer] = layers
    files = {m.name: m for m in layer.getmembers() if m.isfile()}
    assert set(files) == {"terraform-provider-paved", "etc/ssl/certs/ca-certificates.crt",
                          "etc/passwd", "etc/group"}
    assert all(m.uid == 0 and m.gid == 0 for m in layer.getmembers())
    assert files["terraform-provider-paved"].mode == 0o755
    binary = layer.extractfile(files["terraform-provider-paved"]).read()
    assert binary == Path(release["binary"]).read_bytes(), "the image must carry the released binary"
    passwd = layer.extractfile(files["etc/passwd"]).read().decode()
    assert "paved:x:65532:65532:" in passwd
    assert b"BEGIN CERTIFICATE" in layer.extractfile(files["etc/ssl/certs/ca-certificates.crt"]).read()
    # The docker-save view names the same config and layer (what xpkg build reads).
    assert docker[0]["RepoTags"] == [f"ghcr.io/paved/provider-paved:v{VERSION}"]
    # The extracted binary starts.
    exe = tmp_path / "terraform-provider-paved"
    exe.write_bytes(binary)
    exe.chmod(0o755)
    p = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == f"terraform-provider-paved {VERSION}", p


def xp():
    if not XP.exists():
        if CI:
            pytest.fail(f"Crossplane CLI missing at {XP}")
        pytest.skip(f"Crossplane CLI missing at {XP} (acceptance-tests/xpcli/build.sh)")
    return str(XP)


def xpkg_files(path: Path) -> dict:
    """Regular files of every layer of an xpkg (a docker-save archive written by `xpkg build`)."""
    files = {}
    with tarfile.open(path) as t:
        [m] = json.loads(t.extractfile("manifest.json").read())
        for layer in m["Layers"]:
            raw = t.extractfile(layer).read()
            data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            with tarfile.open(fileobj=io.BytesIO(data)) as lt:
                for e in lt.getmembers():
                    if e.isfile():
                        files[e.name] = lt.extractfile(e).read()
    return files


MR_OK = """apiVersion: paved.dev/v1alpha1
kind: GpuComputePool
metadata: {name: ok}
spec:
  forProvider:
    name: recsys-training
    team: recsys
    imageId: ami-04681a1dbd79675a5
    availabilityZones: [us-east-1a]
    accelerator: {type: nvidia-a10g, count: 1}
    nodes: {min: 0, max: 4, desired: 2}
---
apiVersion: paved.dev/v1alpha1
kind: VectorDB
metadata: {name: ok}
spec:
  writeConnectionSecretToRef: {name: c, namespace: search}
  forProvider: {name: rag, namespace: search, engine: pgvector, collection: [{name: chunks, dimension: 1024}]}
"""
MR_BAD = """apiVersion: paved.dev/v1alpha1
kind: GpuComputePool
metadata: {name: bad}
spec:
  forProvider:
    name: recsys-training
    nodes: {min: "zero"}
"""


def test_xpkg_checks_clean_with_the_crossplane_cli(release, tmp_path):
    xpkg = Path(release["xpkg"])
    assert xpkg.is_file() and xpkg.stat().st_size > 0
    # The runtime image is embedded: the package's layers carry the released binary.
    files = xpkg_files(xpkg)
    assert files["terraform-provider-paved"] == Path(release["binary"]).read_bytes()
    assert "package.yaml" in files
    # `xpkg extract --from-xpkg` reads the package stream back out, as Crossplane's cache does.
    out = tmp_path / "out.gz"
    p = subprocess.run([xp(), "xpkg", "extract", "--from-xpkg", str(xpkg), "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    with gzip.open(out, "rt") as f:
        docs = [d for d in yaml_load_all(f.read()) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["CustomResourceDefinition"] * 5 + ["Provider"], kinds
    [meta] = [d for d in docs if d["kind"] == "Provider"]
    assert meta["apiVersion"] == "meta.pkg.crossplane.io/v1"
    assert "GpuComputePool" in meta["metadata"]["annotations"]["meta.crossplane.io/readme"]
    crds = tmp_path / "crds.yaml"
    crds.write_text("\n---\n".join(json.dumps(d) for d in docs if d["kind"] == "CustomResourceDefinition"))
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert names == {f"{p}.paved.dev" for p in ("gpucomputepools", "modelendpoints", "vectordbs",
                                                 "featurestores", "providerconfigs")}
    # Managed resources validate against the package's CRDs with the CLI's validator, and a
    # wrong one is rejected (so a broken schema in the package cannot pass).
    for text, ok in ((MR_OK, True), (MR_BAD, False)):
        mrs = tmp_path / ("ok.yaml" if ok else "bad.yaml")
        mrs.write_text(text)
        p = subprocess.run([xp(), "resource", "validate", "--crossplane-image=", str(crds), str(mrs), "--cache-dir", str(tmp_path / "xpcache"),
                            "--error-on-missing-schemas"], capture_output=True, text=True, timeout=300)
        assert (p.returncode == 0) == ok, p.stdout + p.stderr


def yaml_load_all(text):
    import yaml
    return list(yaml.safe_load_all(text))
