"""The Crossplane golden paths (examples/crossplane) and the Backstage template's claims
(examples/backstage), checked with the real Crossplane CLI (v2.5, built from the Go module
proxy by acceptance-tests/xpcli/build.sh; a failed build fails these tests), offline:

* `crossplane resource validate` of XRDs, Compositions (with their function-patch-and-
  transform inputs), Functions, ProviderConfig and claims against the XRDs, paved's generated
  CRDs (package/crds), Crossplane's own CRDs and the function's input CRD;
* `crossplane xr generate` + `crossplane composition render` of each claim, with
  function-patch-and-transform started locally (Development runtime) and Crossplane core's
  engine (--crossplane-binary); the composed managed resources must have the expected kinds,
  names, team/project and portal labels, and validate against paved's CRDs;
* broken claims, managed resources and Compositions are rejected.

Managed-resource kinds whose CRD is not in package/crds yet (VectorDB, FeatureStore until
they land) are rendered and checked field by field but cannot be schema-validated; the
arguments the endpoint is gaining (vectorDbId) are tolerated while its CRD lacks them.
"""
import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "xpcli"))
import xpcli  # noqa: E402

ML_CASE, FP_VDB_CASE, FP_REDIS_CASE = xpcli.cases()[:3]


@pytest.fixture(scope="session")
def bin_dir():
    return xpcli.build()


@pytest.fixture(scope="session")
def xp(bin_dir, tmp_path_factory):
    return xpcli.Crossplane(bin_dir, tmp_path_factory.mktemp("xpcli"))


@pytest.fixture(scope="session")
def target(xp):
    with xp.function() as t:
        yield t


@pytest.fixture(scope="session")
def crds():
    return xpcli.paved_crds()


@pytest.fixture(scope="session")
def skeletons(tmp_path_factory):
    return xpcli.render_backstage_skeletons(tmp_path_factory.mktemp("backstage"))


def assert_valid(report, crds, allow_missing=True):
    """No invalid resource; resources without a schema only for paved kinds with no CRD yet;
    returns the pending notes."""
    missing = tuple(k for k in xpcli.MR_KINDS if k not in crds) if allow_missing else ()
    probs, pending = xpcli.report_problems(report, missing, crds=crds)
    assert not probs, "crossplane resource validate rejected:\n" + "\n".join(probs)
    return pending


def by_kind_name(report):
    return {(r["kind"], r.get("name", "")): r["status"] for r in report["resources"]}


def test_cli_is_the_pinned_version(xp):
    gomod = (xpcli.HERE / "gomod" / "crossplane" / "go.mod").read_text()
    version = next(line.split()[-1] for line in gomod.splitlines() if "github.com/crossplane/cli/v2 v" in line)
    assert version in xp.version()
    # The engine render runs is Crossplane core, with `internal render`.
    p = subprocess.run([str(xp.core), "internal", "render", "--help"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_generated_crds_cover_the_composed_kinds(crds):
    """The MR validation below is only as good as package/crds: the two resources paved has
    shipped longest must be there; VectorDB and FeatureStore follow with their resources."""
    assert {"GpuComputePool", "ModelEndpoint", "ProviderConfig"} <= set(crds), (
        f"package/crds has {sorted(crds)}: regenerate the CRDs")
    for kind in crds:
        assert crds[kind]["spec"]["scope"] == "Cluster"
        assert crds[kind]["spec"]["group"] == "paved.dev"


def test_examples_validate_offline(xp, crds):
    report = xp.validate([xpcli.EXAMPLES])
    assert_valid(report, crds, allow_missing=False)
    seen = by_kind_name(report)
    for key in [("CompositeResourceDefinition", "xmlinferences.platform.paved.dev"),
                ("CompositeResourceDefinition", "xfeatureplatforms.platform.paved.dev"),
                ("Composition", "ml-inference"), ("Composition", "feature-platform-vectordb"),
                ("Composition", "feature-platform-redis"),
                ("Function", "function-patch-and-transform"),
                ("MLInference", "fraud-scoring"), ("FeaturePlatform", "fraud-features"),
                ("ProviderConfig", "default")]:
        assert seen.get(key) == "valid", f"{key} not validated: {seen}"
    # Each Composition's pipeline input is checked against function-patch-and-transform's CRD.
    assert sum(1 for r in report["resources"] if r["kind"] == "Resources" and r["status"] == "valid") == 3


def test_functions_use_the_development_runtime():
    fn = xpcli.load_all(xpcli.EXAMPLES / "functions.yaml")[0]
    ann = fn["metadata"]["annotations"]
    assert ann["render.crossplane.io/runtime"] == "Development"
    assert xpcli.DEV_TARGET in ann


def _template():
    return yaml.safe_load((xpcli.BACKSTAGE / "template.yaml").read_text())


def test_backstage_template_fills_every_skeleton_placeholder():
    t = _template()
    assert t["apiVersion"] == "scaffolder.backstage.io/v1beta3" and t["kind"] == "Template"
    fetches = [s for s in t["spec"]["steps"] if s["action"] == "fetch:template"]
    assert {s["input"]["url"] for s in fetches} == {"./skeleton", "./skeleton-feature-platform"}
    for step in fetches:
        skel = xpcli.BACKSTAGE / step["input"]["url"]
        assert skel.is_dir()
        used = set()
        for f in skel.rglob("*"):
            if f.is_file():
                used |= set(re.findall(r"\$\{\{\s*values\.([A-Za-z0-9_]+)\s*\}\}", f.read_text()))
        defined = set(step["input"]["values"])
        assert used <= defined, f"{skel.name} uses values the step does not pass: {used - defined}"
        # And the sample values the tests use stand for exactly those.
        assert used <= set(xpcli.BACKSTAGE_VALUES[skel.name])
    publish = [s for s in t["spec"]["steps"] if s["action"].startswith("publish:")]
    assert publish, "the template must publish the claims"
    # Every parameter the steps read is declared.
    declared = set()
    for page in t["spec"]["parameters"]:
        declared |= set(page.get("properties", {}))
        for alt in page.get("dependencies", {}).get("featureStore", {}).get("oneOf", []):
            declared |= set(alt.get("properties", {}))
    text = (xpcli.BACKSTAGE / "template.yaml").read_text()
    read = set(re.findall(r"parameters\.([A-Za-z0-9_]+)", text))
    assert read <= declared, f"template reads undeclared parameters: {read - declared}"


def test_backstage_claims_validate_and_match_the_catalog_entry(xp, crds, skeletons):
    report = xp.validate([d / "crossplane" for d in skeletons.values()])
    assert_valid(report, crds, allow_missing=False)
    assert {r["kind"] for r in report["resources"] if r["status"] == "valid"} == {"MLInference", "FeaturePlatform"}
    catalog = yaml.safe_load((skeletons["skeleton"] / "catalog-info.yaml").read_text())
    kid = catalog["metadata"]["annotations"]["backstage.io/kubernetes-id"]
    # Cost Insights (AWS plugin) finds the entity's cost by the attribution tags paved writes.
    labels = catalog["metadata"]["labels"]
    assert catalog["metadata"]["annotations"]["aws.amazon.com/cost-insights-tags"] == \
        f"team={labels['team']},project={labels['project']}"
    assert labels["team"] == labels["paved.dev/team"] and labels["project"] == labels["paved.dev/project"]
    for d in skeletons.values():
        for f in (d / "crossplane").glob("*.yaml"):
            claim = xpcli.load_all(f)[0]
            assert claim["metadata"]["labels"]["backstage.io/kubernetes-id"] == kid
            assert claim["spec"]["backstageComponent"] == kid


ALL_CASES = [c.name for c in xpcli.cases(Path("/nonexistent"))]


@pytest.mark.parametrize("name", ALL_CASES)
def test_render(name, xp, target, crds, skeletons, tmp_path):
    case = next(c for c in xpcli.cases(next(iter(skeletons.values())).parent) if c.name == name)
    xr = xp.claim_to_xr(case, tmp_path)
    f, docs = xp.render(case, tmp_path, target)
    assert docs[0]["kind"] == xr["kind"] and docs[0]["metadata"]["name"] == case.xr_name
    got = xpcli.composed(docs)
    assert {n: (d["kind"], d["metadata"]["name"]) for n, d in got.items()} == case.expect

    asked = {k: v for k, v in (xpcli.load_all(case.claim)[0]["metadata"].get("annotations") or {}).items()
             if k.startswith("paved.dev/")}
    assert "paved.dev/requested-by" in asked, "every example and template claim names its requester"
    for res, mr in got.items():
        ann = mr["metadata"].get("annotations", {})
        assert {k: ann.get(k) for k in asked} == asked, (res, ann)
        labels = mr["metadata"]["labels"]
        assert labels["backstage.io/kubernetes-id"] == case.component, res
        assert labels["paved.dev/team"] == case.team, res
        assert labels["paved.dev/project"] == case.project, res
        assert labels["paved.dev/owner"] == case.owner, res
        fp = mr["spec"]["forProvider"]
        assert (fp["team"], fp["project"]) == (case.team, case.project), res
        assert fp["name"] == mr["metadata"]["name"], res
        assert mr["spec"]["providerConfigRef"] == {"name": "default"}
        ref = mr["spec"]["writeConnectionSecretToRef"]
        assert ref["namespace"] == "crossplane-system" and ref["name"].startswith(mr["metadata"]["name"])
        assert mr["metadata"]["ownerReferences"][0]["name"] == case.xr_name

    claim = xpcli.load_all(case.claim)[0]["spec"]
    if "pool" in got:
        pool = got["pool"]["spec"]["forProvider"]
        assert pool["accelerator"] == {"type": claim["pool"]["accelerator"], "count": claim["pool"]["gpusPerNode"]}
        assert pool["nodes"] == {"min": claim["pool"]["minNodes"], "max": claim["pool"]["maxNodes"]}
        assert pool["capacityType"] == claim["pool"]["capacityType"]
        assert pool["region"] == claim["region"] and pool["cloud"] == "aws"
        assert pool["cudaVersion"] == claim["pool"]["cudaVersion"]
        assert pool["labels"]["paved.dev/endpoint"] == claim["name"]
    if "endpoint" in got:
        ep = got["endpoint"]["spec"]["forProvider"]
        assert ep["model"]["uri"] == claim["model"]["uri"] and ep["model"]["version"] == claim["model"]["version"]
        assert ep["runtime"]["image"] == claim["serving"]["image"]
        assert ep["runtime"]["cudaVersion"] == claim["pool"]["cudaVersion"]
        assert ep["namespace"] == claim["namespace"]
        assert ep["autoscaling"] == {"minReplicas": claim["serving"]["minReplicas"],
                                     "maxReplicas": claim["serving"]["maxReplicas"]}
        # Nothing exists yet, so no pool or vector DB ID to wire in.
        assert "poolId" not in ep and "vectorDbId" not in ep
        assert ep.get("featureStoreId") == claim.get("featureStoreId")
    if "vector-db" in got:
        vdb = got["vector-db"]["spec"]["forProvider"]
        assert vdb["engine"] == claim["vectorDb"]["engine"]
        assert vdb["collection"] == [{"name": claim["vectorDb"]["collection"], "dimension": claim["vectorDb"]["dimension"],
                                      "distance": claim["vectorDb"]["distance"]}]
        assert vdb.get("allowedTeams") == claim["vectorDb"].get("allowedTeams")
    if "online-store" in got:
        assert got["online-store"]["spec"]["forProvider"]["engine"] == claim["onlineStore"]["engine"]
    if "feature-store" in got:
        fs = got["feature-store"]["spec"]["forProvider"]
        assert fs["feastProject"] == claim["feastProject"]
        assert fs["offlineStore"] == claim["offlineStore"] and fs["registry"] == claim["registry"]
        assert fs["onlineStore"]["kind"] == ("vector_db" if "online-store" in got else "redis")
        assert "vectorDbId" not in fs["onlineStore"]
        if "online-store" in got:
            assert got["online-store"]["spec"]["forProvider"]["storage"]["size"] == \
                claim.get("onlineStore", {}).get("storageSize", "10Gi")
        else:
            assert fs["onlineStore"]["storageSize"] == claim.get("onlineStore", {}).get("storageSize", "1Gi")

    report = xp.validate([f])
    pending = assert_valid(report, crds)
    statuses = {(r["kind"], r.get("name")): r["status"] for r in report["resources"]}
    assert statuses[(xr["kind"], case.xr_name)] == "valid"
    for kind, name in case.expect.values():
        if kind not in crds:
            assert statuses[(kind, name)] == "missingSchema"
        elif statuses[(kind, name)] != "valid":
            # Only arguments paved is gaining (xpcli.PENDING_FIELDS) may be unknown, and
            # assert_valid has already failed on anything else.
            assert any(p.startswith(f"paved.dev/v1alpha1 {kind} {name}:") for p in pending), (kind, name)


def test_ids_flow_from_the_composed_resources_to_the_endpoint(xp, target, crds, tmp_path):
    """Once paved reports the pool's and the vector DB's IDs (status.atProvider.id) and the
    pool's price per GPU, the next reconciles carry them through the XR's status into the
    endpoint's forProvider."""
    xp.claim_to_xr(ML_CASE, tmp_path)
    f, status = xpcli.two_reconciles(xp, ML_CASE, tmp_path, target, xpcli.observed_ml_inference())
    assert status == {"poolId": "gp-0a1b2c3d", "vectorDbId": "team-risk/fraud-scoring-vectors",
                      "endpointUrl": "http://fraud-scoring.team-risk.svc:8080", "hourlyCostUsd": 2.02,
                      "poolGpuHourlyUsd": 1.01}
    docs = xpcli.load_all(f)
    ep = xpcli.composed(docs)["endpoint"]["spec"]["forProvider"]
    assert ep["poolId"] == "gp-0a1b2c3d"
    # The endpoint's GPU share is priced at its pool's price per GPU.
    assert ep["gpuHourlyUsd"] == 1.01
    assert ep["vectorDbId"] == "team-risk/fraud-scoring-vectors"
    pending = assert_valid(xp.validate([f]), crds)
    if not xpcli.crd_has_field(crds["ModelEndpoint"], "spec.forProvider.vectorDbId"):
        pytest.xfail("the ModelEndpoint CRD has no forProvider.vectorDbId yet (paved_model_endpoint.vector_db_id "
                     f"not merged): {pending}")


def test_the_requester_reaches_every_composed_resource(xp, target, crds, tmp_path):
    """The claim's paved.dev/requested-by, request-id and change-url (what a portal sets)
    reach the XR and every composed managed resource, where the controller's audit records
    read the requester from."""
    claim = xpcli.load_all(ML_CASE.claim)[0]["metadata"]["annotations"]
    asked = {k: v for k, v in claim.items() if k.startswith("paved.dev/")}
    assert set(asked) == {"paved.dev/requested-by", "paved.dev/request-id", "paved.dev/change-url"}
    xr = xp.claim_to_xr(ML_CASE, tmp_path)
    assert {k: xr["metadata"].get("annotations", {}).get(k) for k in asked} == asked
    _, docs = xp.render(ML_CASE, tmp_path, target)
    got = xpcli.composed(docs)
    assert set(got) == {"pool", "vector-db", "endpoint"}
    for res, mr in got.items():
        ann = mr["metadata"].get("annotations", {})
        assert {k: ann.get(k) for k in asked} == asked, (res, ann)


def test_vector_db_id_flows_into_the_feature_store(xp, target, crds, tmp_path):
    xp.claim_to_xr(FP_VDB_CASE, tmp_path)
    f, status = xpcli.two_reconciles(xp, FP_VDB_CASE, tmp_path, target, xpcli.observed_feature_platform())
    assert status == {"vectorDbId": "team-risk/fraud-features-online", "featureStoreId": "team-risk/fraud-features",
                      "featureServerUrl": "http://fraud-features.team-risk.svc:6566"}
    fs = xpcli.composed(xpcli.load_all(f))["feature-store"]["spec"]["forProvider"]
    assert fs["onlineStore"] == {"kind": "vector_db", "vectorDbId": "team-risk/fraud-features-online"}
    assert_valid(xp.validate([f]), crds)


BROKEN = {
    # claim: unknown field (typo) and wrong type
    "claim-unknown-field": ("MLInference", lambda d: d["spec"].__setitem__("vectordb", {"engine": "qdrant"}),
                            "unknownField", "spec.vectordb"),
    "claim-wrong-type": ("MLInference", lambda d: d["spec"]["serving"].__setitem__("gpus", "lots"),
                         "schema", "spec.serving.gpus"),
    "claim-bad-enum": ("MLInference", lambda d: d["spec"]["pool"].__setitem__("capacityType", "on-demand"),
                       "schema", "spec.pool.capacityType"),
    # managed resources straight from render output, broken
    "pool-unknown-field": ("GpuComputePool", lambda d: d["spec"]["forProvider"].__setitem__("gpusPerNode", 2),
                           "unknownField", "spec.forProvider.gpusPerNode"),
    "pool-wrong-type": ("GpuComputePool", lambda d: d["spec"]["forProvider"]["nodes"].__setitem__("min", "one"),
                        "schema", "spec.forProvider.nodes.min"),
    "endpoint-missing-required": ("ModelEndpoint", lambda d: d["spec"]["forProvider"]["model"].pop("uri"),
                                  "schema", "spec.forProvider.model.uri"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_resources_are_rejected(name, xp, target, crds, tmp_path):
    kind, breaks, etype, field = BROKEN[name]
    if kind == "MLInference":
        doc = xpcli.load_all(ML_CASE.claim)[0]
    else:
        assert kind in crds, f"no {kind} CRD in package/crds"
        xp.claim_to_xr(ML_CASE, tmp_path)
        _, docs = xp.render(ML_CASE, tmp_path, target)
        doc = next(d for d in docs if d["kind"] == kind)
        for k, path in xpcli.PENDING_FIELDS:  # arguments the CRD may not have yet
            if k == kind and not xpcli.crd_has_field(crds[kind], path):
                doc["spec"]["forProvider"].pop(path.rsplit(".", 1)[1], None)
    good = xpcli.dump_all([doc], tmp_path / "good.yaml")
    bad_doc = copy.deepcopy(doc)
    breaks(bad_doc)
    bad = xpcli.dump_all([bad_doc], tmp_path / "bad.yaml")
    assert xp.validate([good])["summary"]["valid"] == 1
    report = xp.validate([bad])
    assert report["exit_code"] == 1 and report["summary"]["invalid"] == 1, report
    errors = report["resources"][0]["errors"]
    assert any(e["type"] == etype and e["field"] == field for e in errors), errors


def test_composition_typos_are_caught(xp, target, crds, tmp_path):
    """A patch type typo fails static validation (function input CRD); a patch that writes a
    field paved's CRD does not have fails the validation of the rendered resources."""
    comp = xpcli.load_all(ML_CASE.composition)[0]
    bad = copy.deepcopy(comp)
    bad["spec"]["pipeline"][0]["input"]["resources"][0]["patches"][1]["type"] = "CombineFromComposit"
    report = xp.validate([xpcli.dump_all([bad], tmp_path / "bad-type.yaml")])
    assert report["exit_code"] == 1
    assert any(r["kind"] == "Resources" and r["status"] == "invalid" for r in report["resources"])

    bad = copy.deepcopy(comp)
    patches = bad["spec"]["pipeline"][0]["input"]["resources"][0]["patches"]
    region = next(p for p in patches if p.get("fromFieldPath") == "spec.region")
    region["toFieldPath"] = "spec.forProvider.regoin"
    case = copy.copy(ML_CASE)
    case.composition = xpcli.dump_all([bad], tmp_path / "bad-field.yaml")
    xp.claim_to_xr(case, tmp_path)
    f, _ = xp.render(case, tmp_path, target)
    assert xp.validate([xpcli.dump_all([bad], tmp_path / "bad-field-static.yaml")])["exit_code"] == 0
    report = xp.validate([f])
    pool = next(r for r in report["resources"] if r["kind"] == "GpuComputePool")
    assert pool["status"] == "invalid"
    assert any(e["type"] == "unknownField" and e["field"] == "spec.forProvider.regoin" for e in pool["errors"])


def test_validate_sh(bin_dir, tmp_path):
    p = subprocess.run(["bash", str(xpcli.HERE / "validate.sh"), str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    static = next(line for line in p.stdout.splitlines() if line.startswith("static: "))
    assert "'invalid': 0" in static and "'missingSchemas': 0" in static, p.stdout
    assert "FAIL" not in p.stdout
    assert (tmp_path / "out" / "rendered" / "ml-inference.rendered.yaml").exists()
