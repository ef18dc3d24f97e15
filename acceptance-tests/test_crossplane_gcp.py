"""GpuComputePool with cloud gcp through the Crossplane front end: the real controller binary
against the local control plane and the local Compute Engine API, with a ProviderConfig whose
gcp block points at it. Checks read the Compute API, not only the managed resource."""
import json
import time
import uuid

import pytest

from conftest import PROVIDER_BIN, REPO
from test_crossplane import Controller, get_mr, kubectl_apply, wait_for, wait_gone, wait_ready
from test_gcp_pool import ENDPOINT, PROJECT, REGION, gce, groups, instances, templates  # noqa: F401 (gce fixture)

RUN = uuid.uuid4().hex[:6]
PC = f"cp-gcp-{RUN}"


@pytest.fixture(scope="module")
def gcp_setup(cluster):
    assert PROVIDER_BIN.exists(), f"build the provider first: {PROVIDER_BIN} is missing"
    cluster.run("apply", "-f", str(REPO / "package" / "crds"))
    for crd in ["gpucomputepools.paved.dev", "providerconfigs.paved.dev"]:
        cluster.run("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    kubectl_apply(cluster, [
        {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": PC},
         "spec": {"gcp": {"project": PROJECT, "region": REGION, "endpoint": ENDPOINT},
                  "kubernetes": {"source": "InjectedIdentity"},
                  "defaultTeam": "search", "defaultProject": "ranking",
                  "defaultTags": {"cost-center": "cc-1234"}}}])
    yield
    items = json.loads(cluster.run("get", "gpucomputepools", "-o", "json").stdout)["items"]
    for i in items:
        n = i["metadata"]["name"]
        if n.startswith(f"cp-gcp-{RUN}"):
            cluster.run("patch", "gpucomputepools", n, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}', check=False)
            cluster.run("delete", "gpucomputepools", n, "--wait=false", check=False)
    cluster.run("delete", "providerconfig", PC, "--wait=false", check=False)


@pytest.fixture
def controller(cluster, gcp_setup, tmp_path):
    started = []

    def start(*extra, env=None):
        c = Controller(cluster, tmp_path, *extra, env=env)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def gcp_pool_mr(name, pool_name, desired=2):
    return {"apiVersion": "paved.dev/v1alpha1", "kind": "GpuComputePool", "metadata": {"name": name},
            "spec": {"providerConfigRef": {"name": PC}, "forProvider": {
                "name": pool_name, "cloud": "gcp", "team": "recsys",
                "imageId": "projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570",
                "availabilityZones": ["us-central1-a", "us-central1-b"],
                "accelerator": {"type": "nvidia-t4", "count": 1},
                "nodes": {"min": 0, "max": 4, "desired": desired},
                "cudaVersion": "12.8", "driverVersion": "570.26", "tags": {"owner": "alice"}}}}


def test_gcp_pool_lifecycle_drift_and_delete(cluster, controller, gce):
    controller()
    mr, name = f"cp-gcp-{RUN}-pool", f"cp-gcp-{RUN}-train"
    kubectl_apply(cluster, [gcp_pool_mr(mr, name)])
    obj = wait_ready(cluster, "gpucomputepool", mr, timeout=120)
    at = obj["status"]["atProvider"]
    pool_id = obj["metadata"]["annotations"]["crossplane.io/external-name"]
    assert pool_id == at["id"] and at["gcpProject"] == PROJECT
    gname = at["instanceGroup"].rsplit("/", 1)[1]
    insts = instances(gce)
    assert len(insts) == 2 and sorted(k.rsplit("/", 1)[1] for k in insts) == at["instanceIds"]
    # N1 + T4: the GPU is a guest accelerator on the template.
    t = gce.ok("GET", f"{PROJECT}/global/instanceTemplates/{at['instanceTemplate']}")["properties"]
    assert t["machineType"].endswith("n1-standard-4")
    assert t["guestAccelerators"][0]["acceleratorType"].endswith("nvidia-tesla-t4")
    assert t["labels"]["paved-team"] == "recsys" and t["labels"]["paved-project"] == "ranking"
    assert t["labels"]["cost-center"] == "cc-1234"
    assert abs(at["hourlyCostUsd"] - 2 * 0.54) < 1e-9

    # Drift: the group resized out of band is put back on a following poll.
    gce.control("igm/resize", {"project": PROJECT, "region": REGION, "name": gname, "size": 3})
    wait_for("group back to 2", lambda: groups(gce)[f"{PROJECT}/{REGION}/{gname}"]["targetSize"] == 2
             and len(instances(gce)) == 2, timeout=60)

    # Resize in place.
    cluster.run("patch", "gpucomputepool", mr, "--type=merge", "-p", '{"spec":{"forProvider":{"nodes":{"desired":3}}}}')
    wait_for("3 instances", lambda: len(instances(gce)) == 3, timeout=60)
    wait_ready(cluster, "gpucomputepool", mr, timeout=60)

    cluster.run("delete", "gpucomputepool", mr, "--wait=false")
    wait_gone(cluster, "gpucomputepool", mr, timeout=120)
    assert groups(gce) == {} and templates(gce) == [] and instances(gce) == {}


@pytest.mark.parametrize("window", ["before-create", "after-create"])
def test_gcp_killed_mid_create_never_duplicates(cluster, controller, gce, window):
    """SIGKILL the controller inside the create (external name recorded; before, or after,
    the Compute calls) and restart it: one template and one group under the recorded name."""
    mr, name = f"cp-gcp-{RUN}-crash-{window[:5]}", f"cp-gcp-{RUN}-crash-{window[:5]}"
    c1 = controller(env={"PAVED_CROSSPLANE_FAULT": f"{window}:60s"})
    kubectl_apply(cluster, [gcp_pool_mr(mr, name)])

    def in_window():
        ann = (get_mr(cluster, "gpucomputepool", mr) or {}).get("metadata", {}).get("annotations", {})
        if "crossplane.io/external-create-pending" not in ann:
            return None
        if window == "after-create":
            return ann if len(groups(gce)) == 1 else None
        return ann
    ann = wait_for(f"controller inside the {window} window", in_window, timeout=60)
    time.sleep(1)
    c1.kill()
    recorded = ann["crossplane.io/external-name"]
    assert len(groups(gce)) == (1 if window == "after-create" else 0)

    controller()
    obj = wait_ready(cluster, "gpucomputepool", mr, timeout=120)
    assert obj["metadata"]["annotations"]["crossplane.io/external-name"] == recorded
    assert len(groups(gce)) == 1 and len(templates(gce)) == 1 and len(instances(gce)) == 2
    time.sleep(7)  # two more polls: still exactly one set
    assert len(groups(gce)) == 1 and len(templates(gce)) == 1 and len(instances(gce)) == 2
    cluster.run("delete", "gpucomputepool", mr, "--wait=false")
    wait_gone(cluster, "gpucomputepool", mr, timeout=120)
    assert groups(gce) == {} and templates(gce) == [] and instances(gce) == {}


def test_gcp_service_account_key_from_a_secret(cluster, controller, gce, tmp_path):
    """A ProviderConfig whose gcp credentials are a service-account key in a Secret: the
    project requires sign-in, the pool is made with requests the server attributes to the key's
    service account; a Secret holding something that is not a key is a condition saying so."""
    from test_crossplane import condition
    from test_gcp_pool import principals, rsa_key

    sa = f"xp-{RUN}@paved-test.iam.gserviceaccount.com"
    pem, modulus = rsa_key(tmp_path)
    gce.control("auth", {"required_projects": [PROJECT], "service_accounts": {sa: {"n": modulus}}})
    key = {"type": "service_account", "project_id": PROJECT, "private_key_id": "k1", "private_key": pem,
           "client_email": sa, "client_id": "1", "token_uri": f"{ENDPOINT}/token"}
    pc, bad_pc = f"{PC}-sa", f"{PC}-bad"
    spec = lambda secret: {"gcp": {"project": PROJECT, "region": REGION, "endpoint": ENDPOINT,  # noqa: E731
                                   "credentials": {"source": "Secret", "secretRef": {
                                       "namespace": "default", "name": secret, "key": "key.json"}}},
                           "kubernetes": {"source": "InjectedIdentity"}, "defaultTeam": "search", "defaultProject": "ranking"}
    kubectl_apply(cluster, [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{pc}-key", "namespace": "default"},
         "stringData": {"key.json": json.dumps(key)}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{bad_pc}-key", "namespace": "default"},
         "stringData": {"key.json": '{"type": "service_account", "private_key": "SECRET"}'}},
        {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": pc}, "spec": spec(f"{pc}-key")},
        {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": bad_pc}, "spec": spec(f"{bad_pc}-key")},
    ])
    controller()
    good, bad = gcp_pool_mr(f"cp-gcp-{RUN}-sa", f"cp-gcp-{RUN}-sa", desired=1), gcp_pool_mr(f"cp-gcp-{RUN}-bad", f"cp-gcp-{RUN}-bad", desired=1)
    good["spec"]["providerConfigRef"]["name"], bad["spec"]["providerConfigRef"]["name"] = pc, bad_pc
    kubectl_apply(cluster, [good, bad])
    wait_ready(cluster, "gpucomputepool", good["metadata"]["name"], timeout=120)
    assert len(instances(gce)) == 1 and set(principals(gce)) == {sa}
    synced = wait_for("the bad key's condition", lambda: (lambda c: c if c.get("status") == "False" else None)(
        condition(get_mr(cluster, "gpucomputepool", bad["metadata"]["name"]), "Synced")), timeout=60)
    assert "without client_email" in synced["message"] and "SECRET" not in synced["message"], synced
    for mr in (good, bad):
        cluster.run("delete", "gpucomputepool", mr["metadata"]["name"], "--wait=false")
    wait_gone(cluster, "gpucomputepool", good["metadata"]["name"], timeout=120)
    assert groups(gce) == {} and templates(gce) == []
    cluster.run("patch", "gpucomputepool", bad["metadata"]["name"], "--type=merge", "-p", '{"metadata":{"finalizers":[]}}', check=False)
    for n in (pc, bad_pc):
        cluster.run("delete", "providerconfig", n, "--wait=false", check=False)
        cluster.run("delete", "secret", f"{n}-key", "-n", "default", "--wait=false", check=False)
