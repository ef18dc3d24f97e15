"""Checks paved's Crossplane golden paths with the real Crossplane CLI, offline.

Used by validate.sh (``python xpcli.py OUT_DIR``) and by
acceptance-tests/test_crossplane_examples.py (imported). What it does:

* static: ``crossplane resource validate`` of everything under examples/crossplane (XRDs,
  Compositions with their function-patch-and-transform inputs, Functions, the
  ProviderConfig, the claims) and of the Backstage skeleton claims filled in with sample
  values, against the XRDs, paved's generated CRDs (package/crds), Crossplane's own CRDs
  and function-patch-and-transform's input CRD (the last two copied by build.sh);
* render: each claim becomes an XR (``crossplane xr generate``), which
  ``crossplane composition render`` runs through its Composition with
  function-patch-and-transform started locally (``--insecure``, Development runtime) and
  Crossplane core's engine (``--crossplane-binary``);
* the rendered XR and managed resources are validated against the CRDs again.

Nothing is downloaded: validate gets ``--crossplane-image=`` (no built-in schema image) and
only local files as extensions; render never pulls (Development runtime, local engine).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXAMPLES = REPO / "examples" / "crossplane"
BACKSTAGE = REPO / "examples" / "backstage"
CRDS_DIR = Path(os.environ.get("PAVED_CRDS_DIR", REPO / "package" / "crds"))
PAVED_GROUP = "paved.dev"
# Every managed-resource kind the golden paths compose (CRDs may land one by one).
MR_KINDS = ("GpuComputePool", "ModelEndpoint", "VectorDB", "FeatureStore")
DEV_TARGET = "render.crossplane.io/runtime-development-target"
CONNECTION_SECRETS_NAMESPACE = "crossplane-system"


def build() -> Path:
    """Runs build.sh (cached by version; minutes when cold) and returns the bin directory."""
    p = subprocess.run(["bash", str(HERE / "build.sh")], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"acceptance-tests/xpcli/build.sh failed ({p.returncode}):\n{p.stderr[-6000:]}")
    return Path(p.stdout.strip().splitlines()[-1])


def load_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def dump_all(docs, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def paved_crds(crds_dir: Path = CRDS_DIR) -> dict[str, dict]:
    """kind -> CRD for every paved.dev CRD in crds_dir (empty when the dir is missing)."""
    out = {}
    if crds_dir.is_dir():
        for f in sorted(crds_dir.glob("*.y*ml")):
            for d in load_all(f):
                if d.get("kind") == "CustomResourceDefinition" and d["spec"]["group"] == PAVED_GROUP:
                    out[d["spec"]["names"]["kind"]] = d
    return out


def crd_has_field(crd: dict, dotted: str, version: str = "v1alpha1") -> bool:
    """Whether the CRD's schema declares e.g. spec.forProvider.vectorDbId."""
    for v in crd["spec"]["versions"]:
        if v["name"] != version:
            continue
        s = v["schema"]["openAPIV3Schema"]
        for part in dotted.split("."):
            s = (s.get("properties") or {}).get(part)
            if s is None:
                return False
        return True
    return False


def fill_skeleton(text: str, values: dict) -> str:
    """Fills ``${{ values.NAME }}`` placeholders the way Backstage's fetch:template does for
    plain references (the skeletons use nothing else; a leftover expression is an error)."""

    def sub(m):
        key = m.group(1)
        if key not in values:
            raise KeyError(f"skeleton uses values.{key}, which the sample values do not define")
        return str(values[key])

    out = re.sub(r"\$\{\{\s*values\.([A-Za-z0-9_]+)\s*\}\}", sub, text)
    if "${{" in out:
        raise ValueError(f"skeleton has an expression other than a plain values reference:\n{out}")
    return out


# Sample answers to the Backstage template, after its `values:` expressions ran.
BACKSTAGE_VALUES = {
    "skeleton": {
        "requestedBy": "user:default/alice",
        "name": "churn-model", "component": "churn-model", "team": "growth", "owner": "group-growth",
        "ownerRef": "group:default/growth", "project": "retention", "namespace": "team-growth",
        "region": "us-west-2", "accelerator": "nvidia-l4", "gpusPerNode": 1, "minNodes": 0, "maxNodes": 2,
        "capacityType": "on_demand", "cudaVersion": "12.2", "modelUri": "s3://models/churn/v7",
        "modelVersion": "v7", "modelFormat": "safetensors", "image": "registry.local/churn-server:7",
        "gpus": 1, "minReplicas": 1, "maxReplicas": 3, "vectorDbEngine": "pgvector",
        "collection": "customers", "dimension": 1536, "distance": "dot",
    },
    "skeleton-feature-platform": {
        "requestedBy": "user:default/alice",
        "name": "churn-model-features", "component": "churn-model", "team": "growth",
        "owner": "group-growth", "project": "retention", "namespace": "team-growth",
        "feastProject": "churn_model_features", "offlineStore": "s3://growth-features/offline",
        "registry": "s3://growth-features/registry.db", "onlineStore": "redis", "vectorDbEngine": "qdrant",
    },
}


def render_backstage_skeletons(out: Path) -> dict[str, Path]:
    """Fills both skeletons with BACKSTAGE_VALUES into out/; returns {skeleton: dir}."""
    dirs = {}
    for skel, values in BACKSTAGE_VALUES.items():
        dst = out / skel
        for src in (BACKSTAGE / skel).rglob("*"):
            if src.is_file():
                t = dst / src.relative_to(BACKSTAGE / skel)
                t.parent.mkdir(parents=True, exist_ok=True)
                t.write_text(fill_skeleton(src.read_text(), values))
        dirs[skel] = dst
    return dirs


@dataclass
class Case:
    """One claim rendered through one Composition."""
    name: str
    claim: Path
    composition: Path
    xrd: Path
    xr_name: str
    # composition resource name -> (kind, metadata.name)
    expect: dict[str, tuple[str, str]]
    team: str
    project: str
    owner: str
    component: str
    observed: list[dict] = field(default_factory=list)


ML = EXAMPLES / "ml-inference"
FP = EXAMPLES / "feature-platform"


def cases(backstage_dir: Path | None = None) -> list[Case]:
    cs = [
        Case("ml-inference", ML / "claim-ml-inference.yaml", ML / "composition.yaml", ML / "definition.yaml",
             "fraud-scoring-x7k2p",
             {"pool": ("GpuComputePool", "fraud-scoring-pool"), "vector-db": ("VectorDB", "fraud-scoring-vectors"),
              "endpoint": ("ModelEndpoint", "fraud-scoring")},
             "risk", "fraud", "group-risk", "fraud-scoring"),
        Case("feature-platform-vectordb", FP / "claim-feature-platform.yaml", FP / "composition-vectordb.yaml",
             FP / "definition.yaml", "fraud-features-q9w4z",
             {"online-store": ("VectorDB", "fraud-features-online"), "feature-store": ("FeatureStore", "fraud-features")},
             "risk", "fraud", "group-risk", "fraud-scoring"),
        Case("feature-platform-redis", FP / "claim-feature-platform.yaml", FP / "composition-redis.yaml",
             FP / "definition.yaml", "fraud-features-r3d1s",
             {"feature-store": ("FeatureStore", "fraud-features")},
             "risk", "fraud", "group-risk", "fraud-scoring"),
    ]
    if backstage_dir is not None:
        cs += [
            Case("backstage-ml-inference", backstage_dir / "skeleton" / "crossplane" / "claim-ml-inference.yaml",
                 ML / "composition.yaml", ML / "definition.yaml", "churn-model-b4ck5",
                 {"pool": ("GpuComputePool", "churn-model-pool"), "vector-db": ("VectorDB", "churn-model-vectors"),
                  "endpoint": ("ModelEndpoint", "churn-model")},
                 "growth", "retention", "group-growth", "churn-model"),
            Case("backstage-feature-platform",
                 backstage_dir / "skeleton-feature-platform" / "crossplane" / "claim-feature-platform.yaml",
                 FP / "composition-redis.yaml", FP / "definition.yaml", "churn-model-features-b4ck5",
                 {"feature-store": ("FeatureStore", "churn-model-features")},
                 "growth", "retention", "group-growth", "churn-model"),
        ]
    return cs


def _observed(kind, name, res, at_provider):
    """A composed resource as paved reports it once it exists: ready, with status.atProvider."""
    return {"apiVersion": "paved.dev/v1alpha1", "kind": kind,
            "metadata": {"name": name, "annotations": {"crossplane.io/composition-resource-name": res}},
            "spec": {"forProvider": {}},
            "status": {"atProvider": at_provider, "conditions": [
                {"type": "Ready", "status": "True", "reason": "Available",
                 "lastTransitionTime": "2024-01-01T00:00:00Z"},
                {"type": "Synced", "status": "True", "reason": "ReconcileSuccess",
                 "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}


def observed_feature_platform() -> list[dict]:
    """The feature-platform-vectordb MRs once paved created them."""
    return [
        _observed("VectorDB", "fraud-features-online", "online-store",
                  {"id": "team-risk/fraud-features-online", "endpoint": "fraud-features-online.team-risk.svc",
                   "port": 6333}),
        _observed("FeatureStore", "fraud-features", "feature-store",
                  {"id": "team-risk/fraud-features", "featureServerUrl": "http://fraud-features.team-risk.svc:6566",
                   "onlineStoreEndpoint": "fraud-features-online.team-risk.svc:6333",
                   "clientConfigMap": "fraud-features-feast"}),
    ]


def observed_ml_inference() -> list[dict]:
    """What the ml-inference MRs look like once paved created them (for the second render)."""
    return [
        _observed("GpuComputePool", "fraud-scoring-pool", "pool", {"id": "gp-0a1b2c3d", "hourlyCostUsd": 2.02, "gpuHourlyUsd": 1.01}),
        _observed("VectorDB", "fraud-scoring-vectors", "vector-db",
           {"id": "team-risk/fraud-scoring-vectors", "endpoint": "fraud-scoring-vectors.team-risk.svc", "port": 6333}),
        _observed("ModelEndpoint", "fraud-scoring", "endpoint",
           {"id": "team-risk/fraud-scoring", "url": "http://fraud-scoring.team-risk.svc:8080"}),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Crossplane:
    """The built tools in one working directory (which holds the CLI's config file)."""

    def __init__(self, bin_dir: Path, work: Path):
        self.bin = bin_dir
        self.cli = bin_dir / "crossplane"
        self.core = bin_dir / "crossplane-core"
        self.fpt = bin_dir / "function-patch-and-transform"
        self.xp_crds = bin_dir.parent / "crds"
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, CROSSPLANE_CONFIG=str(work / "crossplane-config.yaml"), NO_COLOR="1")
        # `xr generate` is an alpha command in CLI v2.5.
        (work / "crossplane-config.yaml").write_text("version: 1\nfeatures:\n  enableAlpha: true\n")

    def run(self, *args, check=True, timeout=180) -> subprocess.CompletedProcess:
        p = subprocess.run([str(self.cli), *map(str, args)], cwd=self.work, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"crossplane {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def version(self) -> str:
        return self.run("version", "--client").stdout.strip()

    def extensions(self, crds_dir: Path = CRDS_DIR) -> list[Path]:
        ext = [ML / "definition.yaml", FP / "definition.yaml", self.xp_crds]
        if crds_dir.is_dir() and any(crds_dir.glob("*.y*ml")):
            ext.append(crds_dir)
        return ext

    def validate(self, resources, extensions=None) -> dict:
        """crossplane resource validate -o json; returns the parsed report (never raises on
        invalid resources: callers assert on the report)."""
        ext = extensions if extensions is not None else self.extensions()
        res = resources if isinstance(resources, (list, tuple)) else [resources]
        p = self.run("resource", "validate", "--crossplane-image=", f"--cache-dir={self.work / 'validate-cache'}",
                     "-o", "json", ",".join(map(str, ext)), ",".join(map(str, res)), check=False)
        try:
            report = json.loads(p.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"crossplane resource validate printed no JSON ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        if p.returncode not in (0, 1):
            raise AssertionError(f"crossplane resource validate exited {p.returncode}:\n{p.stderr}")
        report["exit_code"] = p.returncode
        return report

    @contextlib.contextmanager
    def function(self):
        """Starts function-patch-and-transform on a free loopback port; yields host:port."""
        port = free_port()
        log = open(self.work / f"function-patch-and-transform.{port}.log", "w")
        proc = subprocess.Popen([str(self.fpt), "--insecure", f"--address=127.0.0.1:{port}", "--debug"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"function-patch-and-transform exited {proc.returncode}: "
                                         f"{(self.work / log.name).read_text()}")
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError("function-patch-and-transform did not listen within 30 s")
                time.sleep(0.1)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()

    def claim_to_xr(self, case: Case, out: Path) -> dict:
        """crossplane xr generate, then what Crossplane's claim binding does to the XR's
        connection secret reference: the claim's {name} stays on the claim, the XR writes to
        the Composition's writeConnectionSecretsToNamespace under its UID."""
        out.mkdir(parents=True, exist_ok=True)
        raw = out / f"{case.name}.xr-generated.yaml"
        self.run("xr", "generate", case.claim, "--name", case.xr_name, "-o", raw)
        xr = load_all(raw)[0]
        # A stable UID (the API server would assign one), so reruns render the same output.
        xr["metadata"]["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"paved.dev/golden-paths/{case.name}"))
        xr["spec"]["writeConnectionSecretToRef"] = {"name": xr["metadata"]["uid"],
                                                   "namespace": CONNECTION_SECRETS_NAMESPACE}
        # A claim selects its Composition; the XR rendered here names the one under test.
        xr["spec"].pop("compositionSelector", None)
        xr["spec"]["compositionRef"] = {"name": load_all(case.composition)[0]["metadata"]["name"]}
        dump_all([xr], out / f"{case.name}.xr.yaml")
        return xr

    def render(self, case: Case, out: Path, target: str, observed: list[dict] | None = None,
               xr_status: dict | None = None, tag: str = "") -> tuple[Path, list[dict]]:
        """Renders the case's XR (claim_to_xr first) through its Composition; returns the
        output file and its documents (the full XR first, then the composed resources).
        observed: the composed resources as they exist (status.atProvider filled in);
        xr_status: the XR's status from an earlier reconcile; tag names the output files."""
        xr_file = out / f"{case.name}.xr.yaml"
        suffix = f".{tag}" if tag else ""
        if xr_status:
            xr = load_all(xr_file)[0]
            xr["status"] = xr_status
            xr_file = dump_all([xr], out / f"{case.name}{suffix}.xr.yaml")
        args = ["composition", "render", "--include-full-xr", "--include-function-results", xr_file,
                case.composition, EXAMPLES / "functions.yaml", f"--crossplane-binary={self.core}",
                f"--function-annotations={DEV_TARGET}={target}", f"--xrd={case.xrd}", "--timeout=60s"]
        if observed:
            obs = dump_all(observed, out / f"{case.name}.observed-resources.yaml")
            args.append(f"--observed-resources={obs}")
        p = self.run(*args)
        rendered = out / f"{case.name}{suffix}.rendered.yaml"
        rendered.write_text(p.stdout)
        docs = load_all(rendered)
        # Results (kind: Result) go to a file of their own: they are not Kubernetes objects.
        dump_all([d for d in docs if d.get("kind") == "Result"], out / f"{case.name}{suffix}.results.yaml")
        objs = [d for d in docs if d.get("kind") != "Result"]
        dump_all(objs, rendered)
        return rendered, objs


def two_reconciles(xp: Crossplane, case: Case, out: Path, target: str, observed: list[dict]):
    """Two reconciles once the composed resources exist: the first copies their IDs into the
    XR's status (ToCompositeFieldPath), the second patches them from the XR's status into
    the resources that need them (FromCompositeFieldPath). Returns (second output file,
    XR status)."""
    _, docs = xp.render(case, out, target, observed=observed, tag="observed-1")
    status = {k: v for k, v in (docs[0].get("status") or {}).items() if k != "conditions"}
    f, _ = xp.render(case, out, target, observed=observed, xr_status=status, tag="observed-2")
    return f, status


def composed(docs: list[dict]) -> dict[str, dict]:
    """composition resource name -> composed resource, from render output."""
    out = {}
    for d in docs:
        n = (d.get("metadata", {}).get("annotations") or {}).get("crossplane.io/composition-resource-name")
        if n:
            out[n] = d
    return out


# Arguments the golden paths set that paved's resources are gaining (paved_model_endpoint's
# vector_db_id / feature_store_id): while the generated CRD lacks one, its "unknown field"
# is reported as pending instead of failing (PAVED_REQUIRE_ALL_CRDS=1: failing).
PENDING_FIELDS = {
    ("ModelEndpoint", "spec.forProvider.vectorDbId"),
    ("ModelEndpoint", "spec.forProvider.featureStoreId"),
}


def report_problems(report: dict, allow_missing_kinds=(), allow_pending=True,
                    crds: dict | None = None) -> tuple[list[str], list[str]]:
    """(failures, pending) of a validate report. Failures: every error of an invalid
    resource, and every resource without a schema unless its kind is in
    allow_missing_kinds. Pending: unknown-field errors on PENDING_FIELDS that the kind's
    CRD does not declare (when allow_pending)."""
    crds = paved_crds() if crds is None else crds
    probs, pending = [], []
    for r in report.get("resources", []):
        what = f"{r.get('apiVersion')} {r.get('kind')} {r.get('name')}"
        if r.get("status") == "invalid":
            errs = r.get("errors") or [{"message": "invalid"}]
            for e in errs:
                key = (r.get("kind"), e.get("field"))
                if (allow_pending and e.get("type") == "unknownField" and key in PENDING_FIELDS
                        and r.get("kind") in crds and not crd_has_field(crds[r["kind"]], e["field"])):
                    pending.append(f"{what}: {e.get('field')} (not in the {r.get('kind')} CRD yet)")
                else:
                    probs.append(f"{what}: {e.get('message')}")
        elif r.get("status") != "valid":
            if r.get("kind") in allow_missing_kinds:
                pending.append(f"{what}: no CRD for {r.get('kind')} yet")
            else:
                probs.append(f"{what}: {r.get('status')}")
    return probs, pending


def main(argv) -> int:
    out = Path(argv[1] if len(argv) > 1 else "xpcli-out").resolve()
    require_all = os.environ.get("PAVED_REQUIRE_ALL_CRDS") == "1"
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(os.environ["PAVED_XPCLI_BIN"]) if os.environ.get("PAVED_XPCLI_BIN") else build()
    xp = Crossplane(bin_dir, out / "work")
    print(f"crossplane CLI: {xp.version()}; engine: {xp.core}; function: {xp.fpt}")
    have = paved_crds()
    missing = [k for k in MR_KINDS if k not in have]
    print(f"paved CRDs in {CRDS_DIR}: {', '.join(sorted(have)) or 'none'}"
          + (f"; missing: {', '.join(missing)} (their MRs are reported, not validated)" if missing else ""))
    allow = () if require_all else tuple(missing)
    failures, pending = [], []

    skeletons = render_backstage_skeletons(out / "backstage")
    static = xp.validate([EXAMPLES, *(d / "crossplane" for d in skeletons.values())])
    probs, pend = report_problems(static, allow, allow_pending=not require_all, crds=have)
    print(f"static: {static['summary']}")
    failures += [f"static: {p}" for p in probs]
    pending += [f"static: {p}" for p in pend]

    rendered_files = []
    with xp.function() as target:
        for case in cases(out / "backstage"):
            xp.claim_to_xr(case, out / "rendered")
            f, docs = xp.render(case, out / "rendered", target)
            rendered_files.append(f)
            got = {n: (d["kind"], d["metadata"]["name"]) for n, d in composed(docs).items()}
            if got != case.expect:
                failures.append(f"render {case.name}: composed {got}, expected {case.expect}")
            print(f"render {case.name}: {', '.join(f'{k}/{n}' for k, n in got.values())}")
        case = cases()[0]
        f, xr_status = two_reconciles(xp, case, out / "rendered", target, observed_ml_inference())
        rendered_files.append(f)
        print(f"render {case.name} with observed resources: XR status {xr_status}")
    rendered = xp.validate(rendered_files)
    print(f"rendered: {rendered['summary']}")
    probs, pend = report_problems(rendered, allow, allow_pending=not require_all, crds=have)
    failures += [f"rendered: {p}" for p in probs]
    pending += [f"rendered: {p}" for p in pend]

    for p in pending:
        print(f"PENDING {p}")
    for f in failures:
        print(f"FAIL {f}")
    print(f"output in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
