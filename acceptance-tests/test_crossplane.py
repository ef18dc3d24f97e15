"""The Crossplane front end end to end: the real controller binary (`terraform-provider-paved
crossplane`) against the real control plane (CRDs, finalizers, events, leases) and LocalStack.

Every check reads the cloud (EC2 API) or the cluster (kubectl), not only the managed resource's
status. Namespaces and ProviderConfigs are unique per run (prefix `cp-`)."""
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import CLUSTER_DIR, PROVIDER_BIN, REPO, pool_instances, pool_templates

POLL = "3s"
RUN = uuid.uuid4().hex[:6]
NS = f"cp-acc-{RUN}"
PC = f"cp-acc-{RUN}"


def kubectl_apply(cluster, doc):
    text = doc if isinstance(doc, str) else "\n---\n".join(json.dumps(d) for d in doc)
    p = subprocess.run([cluster.bin, "--kubeconfig", cluster.kubeconfig, "apply", "-f", "-"],
                       input=text, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def get_mr(cluster, kind, name):
    return cluster.get(kind, name)


def condition(mr, type_):
    for c in (mr or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c
    return {}


def wait_for(what, fn, timeout=90, every=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def wait_ready(cluster, kind, name, timeout=90):
    def ok():
        mr = get_mr(cluster, kind, name)
        if condition(mr, "Ready").get("status") == "True" and condition(mr, "Synced").get("status") == "True":
            return mr
        return None
    try:
        return wait_for(f"{kind}/{name} Ready and Synced", ok, timeout)
    except AssertionError:
        raise AssertionError(f"{kind}/{name} not Ready/Synced: {json.dumps(get_mr(cluster, kind, name), indent=1)}")


def wait_gone(cluster, kind, name, ns="default", timeout=90):
    wait_for(f"{kind}/{name} deleted", lambda: cluster.get(kind, name, ns=ns) is None, timeout)


def events_for(cluster, name):
    out = cluster.run("get", "events", "-A", "-o", "json", "--field-selector", f"involvedObject.name={name}").stdout
    evs = json.loads(out)["items"]
    out = cluster.run("get", "events.events.k8s.io", "-A", "-o", "json").stdout
    evs += [e for e in json.loads(out)["items"] if (e.get("regarding") or {}).get("name") == name]
    return {e.get("reason") for e in evs}


class Controller:
    """One controller process; logs go to a file the test can read."""

    def __init__(self, cluster, tmp: Path, *extra, env=None, rate=20):
        self.log = tmp / f"controller-{uuid.uuid4().hex[:6]}.log"
        self.fh = open(self.log, "w")
        self.proc = subprocess.Popen(
            [str(PROVIDER_BIN), "crossplane", "--kubeconfig", cluster.kubeconfig, "--poll", POLL,
             "--max-reconcile-rate", str(rate), *extra],
            stdout=self.fh, stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})))

    def text(self):
        return self.log.read_text()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.fh.close()


@pytest.fixture(scope="module")
def setup(cluster):
    """CRDs from package/crds, a namespace, an AWS credentials Secret and a ProviderConfig."""
    assert PROVIDER_BIN.exists(), f"build the provider first: {PROVIDER_BIN} is missing"
    cluster.run("apply", "-f", str(REPO / "package" / "crds"))
    for crd in ["gpucomputepools.paved.dev", "modelendpoints.paved.dev", "providerconfigs.paved.dev",
                "vectordbs.paved.dev", "featurestores.paved.dev"]:
        cluster.run("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    kubectl_apply(cluster, [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws", "namespace": NS},
         "stringData": {"credentials": "[default]\naws_access_key_id = test\naws_secret_access_key = test\n"}},
        {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": PC},
         "spec": {"credentials": {"source": "Secret", "secretRef": {"namespace": NS, "name": "aws", "key": "credentials"}},
                  "aws": {"region": "us-east-1",
                          "endpoints": {"ec2": "http://127.0.0.1:4566", "sts": "http://127.0.0.1:4566"}},
                  "kubernetes": {"source": "InjectedIdentity"},
                  "defaultTeam": "search", "defaultProject": "ranking",
                  "defaultTags": {"cost-center": "cc-1234"}}},
    ])
    yield
    # Anything a failed test left behind: MRs first (their finalizers need the controller),
    # so strip finalizers, then the namespace.
    for kind in ["modelendpoints", "gpucomputepools", "vectordbs", "featurestores"]:
        items = json.loads(cluster.run("get", kind, "-o", "json").stdout)["items"]
        for i in items:
            n = i["metadata"]["name"]
            if n.startswith(f"cp-{RUN}"):
                cluster.run("patch", kind, n, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}', check=False)
                cluster.run("delete", kind, n, "--wait=false", check=False)
    cluster.run("delete", "providerconfig", PC, "--wait=false", check=False)
    cluster.run("delete", "namespace", NS, "--wait=false", check=False)


@pytest.fixture
def controller(cluster, setup, tmp_path):
    started = []

    def start(*extra, env=None, rate=20):
        c = Controller(cluster, tmp_path, *extra, env=env, rate=rate)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()


def endpoint_mr(name, ep_name, image="registry.local/model-server:1", **spec):
    fp = {
        "name": ep_name, "namespace": NS, "poolId": "gp-local",
        "model": {"uri": "s3://models/llm-7b", "version": "v1"},
        "runtime": {"image": image, "cudaVersion": "12.2"},
        "resources": {"gpus": 1, "cpu": "1", "memory": "1Gi"},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
        "health": {"startupTimeout": "20s"},
        "rollout": {"timeout": "1m"},
    }
    fp.update(spec.pop("forProvider", {}))
    return {"apiVersion": "paved.dev/v1alpha1", "kind": "ModelEndpoint",
            "metadata": {"name": name, **spec.pop("metadata", {})},
            "spec": {"providerConfigRef": {"name": PC}, "forProvider": fp, **spec}}


def pool_mr(name, pool_name, desired=2, **spec):
    return {"apiVersion": "paved.dev/v1alpha1", "kind": "GpuComputePool",
            "metadata": {"name": name, **spec.pop("metadata", {})},
            "spec": {"providerConfigRef": {"name": PC}, "forProvider": {
                "name": pool_name, "team": "recsys", "imageId": "ami-04681a1dbd79675a5",
                "availabilityZones": ["us-east-1a", "us-east-1b"],
                "accelerator": {"type": "nvidia-a10g", "count": 1},
                "nodes": {"min": 0, "max": 4, "desired": desired},
                "cudaVersion": "12.2", "driverVersion": "535.104.05",
                "tags": {"owner": "alice"}}, **spec}}


def image_of(cluster, name):
    dep = cluster.get("deployment", name, ns=NS)
    return dep and dep["spec"]["template"]["spec"]["containers"][0]["image"]


def instances_by_pool_name(ec2, pool_name):
    resp = ec2.describe_instances(Filters=[
        {"Name": "tag:paved:pool", "Values": [pool_name]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
    return [i for r in resp["Reservations"] for i in r["Instances"]]


def templates_by_pool_name(ec2, pool_name):
    return ec2.describe_launch_templates(
        Filters=[{"Name": "tag:paved:pool", "Values": [pool_name]}])["LaunchTemplates"]


def test_model_endpoint_lifecycle_drift_pause_delete(cluster, controller):
    controller()
    mr, ep = f"cp-{RUN}-llm", f"llm-{RUN}"
    kubectl_apply(cluster, [endpoint_mr(mr, ep, writeConnectionSecretToRef={"name": f"{ep}-conn", "namespace": NS})])
    obj = wait_ready(cluster, "modelendpoint", mr)
    ann = obj["metadata"]["annotations"]
    assert ann["crossplane.io/external-name"] == f"{NS}/{ep}"
    assert ann["crossplane.io/external-create-succeeded"] >= ann["crossplane.io/external-create-pending"]
    assert obj["metadata"]["finalizers"] == ["finalizer.managedresource.crossplane.io"]
    at = obj["status"]["atProvider"]
    assert at["status"] == "Ready" and at["readyReplicas"] == 1, at
    assert at["url"] == f"http://{ep}.{NS}.svc.cluster.local"
    assert at["lineage"]["team"] == "search", "ProviderConfig defaults reach the resource"

    # The cloud object: a Deployment whose pods run on the simulated GPU nodes.
    dep = cluster.get("deployment", ep, ns=NS)
    assert dep["status"]["availableReplicas"] == 1
    assert dep["spec"]["template"]["spec"]["nodeSelector"] == {"paved.dev/pool-id": "gp-local"}
    for p in cluster.get("pods", ns=NS, selector=f"paved.dev/endpoint={ep}")["items"]:
        assert p["spec"]["nodeName"].startswith("paved-gpu-"), p["spec"].get("nodeName")

    # Connection secret: the endpoint URL, owned by the managed resource.
    sec = cluster.get("secret", f"{ep}-conn", ns=NS)
    import base64
    assert base64.b64decode(sec["data"]["url"]).decode() == at["url"]
    assert sec["type"] == "connection.crossplane.io/v1alpha1"
    assert sec["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    assert "CreatedExternalResource" in events_for(cluster, mr)

    # Drift: an out-of-band image change is reverted on a following poll.
    cluster.run("set", "image", "-n", NS, f"deployment/{ep}", "server=registry.local/model-server:hotfix")
    assert image_of(cluster, ep) == "registry.local/model-server:hotfix"
    wait_for("drift reverted", lambda: image_of(cluster, ep) == "registry.local/model-server:1", timeout=30)
    wait_for("update event", lambda: "UpdatedExternalResource" in events_for(cluster, mr), timeout=15)

    # Paused: Synced=False/ReconcilePaused and drift stays.
    cluster.run("annotate", "modelendpoint", mr, "crossplane.io/paused=true")
    wait_for("paused", lambda: condition(get_mr(cluster, "modelendpoint", mr), "Synced").get("reason") == "ReconcilePaused", timeout=15)
    cluster.run("set", "image", "-n", NS, f"deployment/{ep}", "server=registry.local/model-server:hotfix")
    time.sleep(10)  # > 3 polls
    assert image_of(cluster, ep) == "registry.local/model-server:hotfix", "a paused resource must not be touched"
    cluster.run("annotate", "modelendpoint", mr, "crossplane.io/paused-")
    wait_for("drift reverted after unpause", lambda: image_of(cluster, ep) == "registry.local/model-server:1", timeout=30)

    # A spec change is an update, in place.
    cluster.run("patch", "modelendpoint", mr, "--type=merge", "-p",
                json.dumps({"spec": {"forProvider": {"model": {"version": "v2"}}}}))
    wait_for("new model version served", lambda: (get_mr(cluster, "modelendpoint", mr)["status"]["atProvider"]
                                                  .get("servedRevision", "")).startswith("v2"), timeout=60)

    # Deletion removes the cloud objects, then the managed resource.
    cluster.run("delete", "modelendpoint", mr, "--wait=false")
    wait_gone(cluster, "modelendpoint", mr)
    assert cluster.get("deployment", ep, ns=NS) is None
    assert cluster.get("service", ep, ns=NS) is None
    wait_gone(cluster, "secret", f"{ep}-conn", ns=NS)


def test_invalid_spec_reports_the_field_and_creates_nothing(cluster, controller, ec2):
    controller()
    mr, name = f"cp-{RUN}-bad", f"cp-{RUN}-bad"
    doc = pool_mr(mr, name)
    doc["spec"]["forProvider"]["nodes"] = {"min": 5, "max": 1}
    kubectl_apply(cluster, [doc])
    synced = wait_for("ReconcileError", lambda: condition(get_mr(cluster, "gpucomputepool", mr), "Synced")
                      if condition(get_mr(cluster, "gpucomputepool", mr), "Synced").get("reason") == "ReconcileError" else None, timeout=30)
    assert "spec.forProvider.nodes.min" in synced["message"], synced
    assert synced["status"] == "False"
    assert "crossplane.io/external-create-pending" not in get_mr(cluster, "gpucomputepool", mr)["metadata"].get("annotations", {})
    assert instances_by_pool_name(ec2, name) == [] and templates_by_pool_name(ec2, name) == []
    cluster.run("delete", "gpucomputepool", mr, "--timeout=60s")


def test_pool_lifecycle_drift_and_delete(cluster, controller, ec2):
    controller()
    mr, name = f"cp-{RUN}-pool", f"cp-{RUN}-train"
    kubectl_apply(cluster, [pool_mr(mr, name)])
    obj = wait_ready(cluster, "gpucomputepool", mr, timeout=120)
    pool_id = obj["metadata"]["annotations"]["crossplane.io/external-name"]
    assert pool_id.startswith("gp-") and obj["status"]["atProvider"]["id"] == pool_id
    insts = pool_instances(ec2, pool_id)
    assert len(insts) == 2
    assert sorted(i["InstanceId"] for i in insts) == obj["status"]["atProvider"]["instanceIds"]
    tags = {t["Key"]: t["Value"] for t in insts[0]["Tags"]}
    assert tags["paved:team"] == "recsys" and tags["cost-center"] == "cc-1234" and tags["paved:project"] == "ranking"
    assert len(pool_templates(ec2, pool_id)) == 1

    # Drift: an instance terminated out of band is replaced on a following poll.
    ec2.terminate_instances(InstanceIds=[insts[0]["InstanceId"]])
    wait_for("pool back to 2 instances", lambda: len(pool_instances(ec2, pool_id)) == 2
             and insts[0]["InstanceId"] not in [i["InstanceId"] for i in pool_instances(ec2, pool_id)], timeout=60)

    # Resize in place.
    cluster.run("patch", "gpucomputepool", mr, "--type=merge", "-p", '{"spec":{"forProvider":{"nodes":{"desired":3}}}}')
    wait_for("3 instances", lambda: len(pool_instances(ec2, pool_id)) == 3, timeout=60)

    # A replace-only change is refused with a clear message, nothing is replaced.
    before = sorted(i["InstanceId"] for i in pool_instances(ec2, pool_id))
    cluster.run("patch", "gpucomputepool", mr, "--type=merge", "-p", '{"spec":{"forProvider":{"imageId":"ami-0000000000000000a"}}}')
    synced = wait_for("replace refused", lambda: (lambda c: c if "replacing" in c.get("message", "") else None)(
        condition(get_mr(cluster, "gpucomputepool", mr), "Synced")), timeout=30)
    assert synced["status"] == "False" and "spec.forProvider.imageId" in synced["message"], synced
    assert sorted(i["InstanceId"] for i in pool_instances(ec2, pool_id)) == before

    cluster.run("delete", "gpucomputepool", mr, "--wait=false")
    wait_gone(cluster, "gpucomputepool", mr, timeout=120)
    assert pool_instances(ec2, pool_id) == []
    assert pool_templates(ec2, pool_id) == []


def test_audit_trail_one_intent_and_one_result_per_change(cluster, controller, ec2, tmp_path):
    """The controller's --audit-file: a pool's create, resize and delete each leave one intent
    and one result sharing a request id (a delete spans reconciles), valid under the published
    schema, with the requester from the MR's paved.dev/requested-by annotation."""
    import jsonschema
    trail = tmp_path / "audit.jsonl"
    controller("--audit-file", str(trail))
    mr, name = f"cp-{RUN}-audited", f"cp-{RUN}-audited"
    body = pool_mr(mr, name, desired=1, metadata={"annotations": {"paved.dev/requested-by": "alice@example.com"}})
    kubectl_apply(cluster, [body])
    obj = wait_ready(cluster, "gpucomputepool", mr, timeout=120)
    pool_id = obj["metadata"]["annotations"]["crossplane.io/external-name"]
    cluster.run("patch", "gpucomputepool", mr, "--type=merge", "-p", '{"spec":{"forProvider":{"nodes":{"desired":2}}}}')
    wait_for("2 instances", lambda: len(pool_instances(ec2, pool_id)) == 2, timeout=60)
    cluster.run("delete", "gpucomputepool", mr, "--wait=false")
    wait_gone(cluster, "gpucomputepool", mr, timeout=120)
    assert pool_instances(ec2, pool_id) == []

    recs = [json.loads(line) for line in trail.read_text().splitlines()]
    mine = [r for r in recs if r.get("name") == name or r.get("resource_id") == pool_id]
    schema = json.loads((REPO / "docs" / "audit.schema.json").read_text())
    by_id = {}
    for r in mine:
        jsonschema.validate(r, schema)
        by_id.setdefault(r["request_id"], []).append(r)
    assert [[x["phase"] for x in v] for v in by_id.values()] == [["intent", "result"]] * len(by_id), mine
    assert [v[0]["action"] for v in by_id.values()] == ["create", "update", "delete"], mine
    for intent, result in by_id.values():
        assert result["result"] == "succeeded" and result["resource_id"] == pool_id, result
        assert intent["front_end"] == "crossplane" and intent["requester"] == "alice@example.com"
        assert intent["team"] == "recsys" and intent["resource_type"] == "paved_gpu_compute_pool"
    assert [c["argument"] for c in list(by_id.values())[1][0]["changed"]] == ["nodes"]
    assert "aws_secret_access_key" not in trail.read_text()


def test_budget_exceeded_is_synced_false_and_creates_nothing(cluster, controller, ec2):
    """A ProviderConfig budget below the pool's maximum: Synced=False, reason BudgetExceeded,
    a Warning event, no EC2 object; raising the budget lets the same MR through."""
    team, pc = f"budget-{RUN}", f"{PC}-budget"
    spec = json.loads(cluster.run("get", "providerconfig", PC, "-o", "json").stdout)["spec"]
    spec["budgets"] = [{"team": team, "monthlyUSD": 50}]
    kubectl_apply(cluster, [{"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig",
                             "metadata": {"name": pc}, "spec": spec}])
    controller()
    mr, name = f"cp-{RUN}-budget", f"cp-{RUN}-budget"
    doc = pool_mr(mr, name, desired=1)
    doc["spec"]["providerConfigRef"]["name"] = pc
    doc["spec"]["forProvider"]["team"] = team
    doc["spec"]["forProvider"]["nodes"] = {"min": 1, "max": 2, "desired": 1}
    kubectl_apply(cluster, [doc])
    try:
        synced = wait_for("BudgetExceeded", lambda: (lambda c: c if c.get("reason") == "BudgetExceeded" else None)(
            condition(get_mr(cluster, "gpucomputepool", mr), "Synced")), timeout=60)
        assert synced["status"] == "False", synced
        for want in (team, "50.00", "USD/month committed elsewhere", "can cost up to"):
            assert want in synced["message"], (want, synced)
        assert "BudgetExceeded" in events_for(cluster, mr)
        annotations = get_mr(cluster, "gpucomputepool", mr)["metadata"].get("annotations", {})
        assert "crossplane.io/external-create-pending" not in annotations, annotations
        assert instances_by_pool_name(ec2, name) == [] and templates_by_pool_name(ec2, name) == []
        # Raise the budget: the ProviderConfig is re-read and the pool is created.
        cluster.run("patch", "providerconfig", pc, "--type=merge", "-p",
                    json.dumps({"spec": {"budgets": [{"team": team, "monthlyUSD": 100000}]}}))
        wait_ready(cluster, "gpucomputepool", mr, timeout=120)
        assert len(instances_by_pool_name(ec2, name)) == 1
    finally:
        cluster.run("delete", "gpucomputepool", mr, "--wait=false", check=False)
        wait_gone(cluster, "gpucomputepool", mr, timeout=120)
        cluster.run("delete", "providerconfig", pc, "--wait=false", check=False)
    assert instances_by_pool_name(ec2, name) == []


def test_orphan_then_observe_only(cluster, controller):
    controller()
    mr, ep = f"cp-{RUN}-orphan", f"orphan-{RUN}"
    kubectl_apply(cluster, [endpoint_mr(mr, ep, deletionPolicy="Orphan")])
    wait_ready(cluster, "modelendpoint", mr)
    cluster.run("delete", "modelendpoint", mr, "--wait=false")
    wait_gone(cluster, "modelendpoint", mr)
    assert image_of(cluster, ep) == "registry.local/model-server:1", "deletionPolicy Orphan keeps the Deployment"

    # Observe-only: import by external name with no arguments; status filled, nothing changed.
    obs = f"cp-{RUN}-observe"
    kubectl_apply(cluster, [{"apiVersion": "paved.dev/v1alpha1", "kind": "ModelEndpoint",
                             "metadata": {"name": obs, "annotations": {"crossplane.io/external-name": f"{NS}/{ep}"}},
                             "spec": {"providerConfigRef": {"name": PC}, "managementPolicies": ["Observe"],
                                      "forProvider": {}}}])
    o = wait_ready(cluster, "modelendpoint", obs)
    assert o["status"]["atProvider"]["servedRevision"].startswith("v1"), o["status"]
    assert o["spec"]["forProvider"] == {}, "LateInitialize is not in the policies"
    cluster.run("set", "image", "-n", NS, f"deployment/{ep}", "server=registry.local/model-server:hotfix")
    time.sleep(10)
    assert image_of(cluster, ep) == "registry.local/model-server:hotfix", "observe-only never updates"
    cluster.run("delete", "modelendpoint", obs, "--wait=false")
    wait_gone(cluster, "modelendpoint", obs)
    assert image_of(cluster, ep) == "registry.local/model-server:hotfix", "observe-only never deletes"

    # Observe-only on something that does not exist: an error, never a create.
    missing = f"cp-{RUN}-missing"
    kubectl_apply(cluster, [{"apiVersion": "paved.dev/v1alpha1", "kind": "ModelEndpoint",
                             "metadata": {"name": missing, "annotations": {"crossplane.io/external-name": f"{NS}/nope-{RUN}"}},
                             "spec": {"providerConfigRef": {"name": PC}, "managementPolicies": ["Observe"], "forProvider": {}}}])
    c = wait_for("missing reported", lambda: (lambda c: c if c.get("reason") == "ReconcileError" else None)(
        condition(get_mr(cluster, "modelendpoint", missing), "Synced")), timeout=30)
    assert "does not exist" in c["message"]
    assert cluster.get("deployment", f"nope-{RUN}", ns=NS) is None
    cluster.run("delete", "modelendpoint", missing, "--timeout=60s")
    cluster.run("delete", "deployment,service,hpa,pdb,networkpolicy,serviceaccount", "-n", NS, "-l",
                f"paved.dev/endpoint={ep}", check=False)


def test_slow_rollout_does_not_block_other_objects(cluster, controller):
    controller()
    slow, fast = f"cp-{RUN}-slow", f"cp-{RUN}-fast"
    kubectl_apply(cluster, [endpoint_mr(slow, f"slow-{RUN}", image="registry.local/fail-readiness:1",
                                        forProvider={"rollout": {"timeout": "1m", "autoRollback": False}})])
    wait_for("slow create started", lambda: cluster.get("deployment", f"slow-{RUN}", ns=NS) is not None, timeout=30)
    started = time.monotonic()
    kubectl_apply(cluster, [endpoint_mr(fast, f"fast-{RUN}")])
    wait_ready(cluster, "modelendpoint", fast, timeout=45)
    assert time.monotonic() - started < 30
    slow_ready = condition(get_mr(cluster, "modelendpoint", slow), "Ready")
    assert slow_ready.get("status") != "True", "the slow endpoint is still rolling out (or failed)"
    for mr in (fast, slow):
        cluster.run("delete", "modelendpoint", mr, "--wait=false")
    for mr in (fast, slow):
        wait_gone(cluster, "modelendpoint", mr, timeout=120)


def test_stuck_rollouts_hold_no_worker(cluster, controller):
    """Twelve endpoints whose pods never become Ready, with 10 reconcile workers per kind
    (`--max-reconcile-rate 10`): verbs only start changes and the controller requeues, so an
    endpoint created after them is Ready within 30 s and deleting a stuck one completes within
    30 s. The stuck ones report Ready=False, reason Creating, with the rollout's progress."""
    controller(rate=10)
    stuck = [(f"cp-{RUN}-stuck{i}", f"stuck{i}-{RUN}") for i in range(12)]
    kubectl_apply(cluster, [endpoint_mr(mr, ep, image="registry.local/fail-readiness:1",
                                        forProvider={"health": {"startupTimeout": "30m"},
                                                     "rollout": {"timeout": "1h"},
                                                     # CPU only: the stuck pods must not take the
                                                     # cluster's GPUs from the healthy endpoint.
                                                     "resources": {"gpus": 0, "cpu": "100m",
                                                                   "memory": "128Mi"}})
                            for mr, ep in stuck])
    wait_for("every stuck create started", lambda: all(
        cluster.get("deployment", ep, ns=NS) is not None for _, ep in stuck), timeout=60)

    def creating(mr):
        c = condition(get_mr(cluster, "modelendpoint", mr), "Ready")
        # Until the Deployment controller has seen the spec the progress says so; then replicas.
        return c if c.get("reason") == "Creating" and "replicas" in c.get("message", "") else None
    c = wait_for("a stuck endpoint reports its progress", lambda: creating(stuck[0][0]), timeout=60)
    assert c["status"] == "False" and "replicas" in c["message"], c

    healthy = f"cp-{RUN}-healthy"
    started = time.monotonic()
    kubectl_apply(cluster, [endpoint_mr(healthy, f"healthy-{RUN}")])
    wait_ready(cluster, "modelendpoint", healthy, timeout=30)
    ready_after = time.monotonic() - started
    print(f"healthy endpoint Ready {ready_after:.1f}s after apply, with 12 stuck rollouts")
    assert ready_after < 30

    victim, victim_ep = stuck[5]
    started = time.monotonic()
    cluster.run("delete", "modelendpoint", victim, "--wait=false")
    wait_gone(cluster, "modelendpoint", victim, timeout=30)
    print(f"stuck endpoint deleted in {time.monotonic() - started:.1f}s")
    wait_for("its Deployment gone", lambda: cluster.get("deployment", victim_ep, ns=NS) is None, timeout=30)
    # The others are still rolling out, none was rolled back (their deadline is far off).
    assert all(creating(mr) for mr, _ in stuck if mr != victim)

    for mr, _ in [*stuck, (healthy, None)]:
        cluster.run("delete", "modelendpoint", mr, "--wait=false", check=False)
    for mr, _ in [*stuck, (healthy, None)]:
        wait_gone(cluster, "modelendpoint", mr, timeout=120)


def test_failed_create_rollout_is_rolled_back_and_not_retried(cluster, controller):
    """A first revision whose pods never become Ready past its progress deadline: the
    controller removes its objects (the create is rolled back, as on the Terraform path),
    records the failed generation and does not create it again until the spec changes."""
    controller()
    mr, ep = f"cp-{RUN}-fails", f"fails-{RUN}"
    kubectl_apply(cluster, [endpoint_mr(mr, ep, image="registry.local/fail-readiness:1",
                                        forProvider={"health": {"startupTimeout": "10s"}})])
    obj = wait_for("the failed generation recorded", lambda: (
        get_mr(cluster, "modelendpoint", mr) or {}).get("metadata", {}).get("annotations", {}).get(
            "paved.dev/failed-generation") and get_mr(cluster, "modelendpoint", mr), timeout=90)
    assert "ProgressDeadlineExceeded" in obj["metadata"]["annotations"]["paved.dev/failure"]
    wait_for("the endpoint's objects removed", lambda: cluster.get("deployment", ep, ns=NS) is None, timeout=30)
    synced = wait_for("Synced=False naming the failed generation", lambda: (
        lambda c: c if c.get("status") == "False" and "not applied again" in c.get("message", "") else None)(
            condition(get_mr(cluster, "modelendpoint", mr), "Synced")), timeout=30)
    assert "Change spec.forProvider to retry" in synced["message"], synced
    time.sleep(8)  # a few polls: still no second create
    assert cluster.get("deployment", ep, ns=NS) is None
    assert "RolledBackExternalResource" in events_for(cluster, mr)
    # A fixed spec is created.
    kubectl_apply(cluster, [endpoint_mr(mr, ep)])
    wait_ready(cluster, "modelendpoint", mr, timeout=60)
    cluster.run("delete", "modelendpoint", mr, "--wait=false")
    wait_gone(cluster, "modelendpoint", mr)


def test_out_of_range_values_are_synced_false_and_others_go_on(cluster, controller):
    """(d) A managed resource whose durations do not fit (a rollout timeout of 2^64 s, a
    startup timeout over the 24 h limit) gets Synced=False naming each field, creates nothing,
    and the controller keeps reconciling the others."""
    c = controller()
    bad, ok = f"cp-{RUN}-range", f"cp-{RUN}-inrange"
    kubectl_apply(cluster, [endpoint_mr(bad, f"range-{RUN}", forProvider={
        "rollout": {"timeout": "18446744073709551615s"}, "health": {"startupTimeout": "25h"}})])
    synced = wait_for("Synced=False on the bad MR", lambda: (
        lambda c: c if c.get("status") == "False" else None)(
            condition(get_mr(cluster, "modelendpoint", bad), "Synced")), timeout=30)
    assert "spec.forProvider.rollout.timeout" in synced["message"], synced
    assert "spec.forProvider.health.startupTimeout" in synced["message"], synced
    kubectl_apply(cluster, [endpoint_mr(ok, f"inrange-{RUN}")])
    wait_ready(cluster, "modelendpoint", ok, timeout=45)
    assert cluster.get("deployment", f"range-{RUN}", ns=NS) is None
    assert c.proc.poll() is None, "the controller is still running"
    for mr in (bad, ok):
        cluster.run("delete", "modelendpoint", mr, "--wait=false")
    for mr in (bad, ok):
        wait_gone(cluster, "modelendpoint", mr)


@pytest.mark.parametrize("window", ["before-create", "after-create"])
def test_killed_mid_create_never_duplicates(cluster, controller, ec2, window):
    """SIGKILL the controller inside the create (after the pending marker and the pre-chosen
    external name are written; before, or after, the cloud calls) and restart it: exactly one
    launch template and the desired instances exist for the pool, under the recorded name."""
    mr, name = f"cp-{RUN}-crash-{window[:5]}", f"cp-{RUN}-crash-{window[:5]}"
    c1 = controller(env={"PAVED_CROSSPLANE_FAULT": f"{window}:60s"})
    kubectl_apply(cluster, [pool_mr(mr, name)])

    def in_window():
        mr_obj = get_mr(cluster, "gpucomputepool", mr) or {}
        ann = mr_obj.get("metadata", {}).get("annotations", {})
        if "crossplane.io/external-create-pending" not in ann:
            return None
        if window == "after-create":
            return ann if len(instances_by_pool_name(ec2, name)) == 2 else None
        return ann
    ann = wait_for(f"controller inside the {window} window", in_window, timeout=60)
    time.sleep(1)
    c1.kill()
    recorded = ann["crossplane.io/external-name"]
    assert recorded.startswith("gp-")
    assert "crossplane.io/external-create-succeeded" not in get_mr(cluster, "gpucomputepool", mr)["metadata"]["annotations"]
    expected_before = 2 if window == "after-create" else 0
    assert len(instances_by_pool_name(ec2, name)) == expected_before

    controller()
    obj = wait_ready(cluster, "gpucomputepool", mr, timeout=120)
    assert obj["metadata"]["annotations"]["crossplane.io/external-name"] == recorded
    insts = instances_by_pool_name(ec2, name)
    assert len(insts) == 2, [i["InstanceId"] for i in insts]
    assert {t["Value"] for i in insts for t in i["Tags"] if t["Key"] == "paved:pool-id"} == {recorded}
    lts = templates_by_pool_name(ec2, name)
    assert len(lts) == 1, lts
    time.sleep(7)  # two more polls: still exactly one set
    assert len(instances_by_pool_name(ec2, name)) == 2 and len(templates_by_pool_name(ec2, name)) == 1

    cluster.run("delete", "gpucomputepool", mr, "--wait=false")
    wait_gone(cluster, "gpucomputepool", mr, timeout=120)
    assert instances_by_pool_name(ec2, name) == [] and templates_by_pool_name(ec2, name) == []


def test_killed_between_template_and_instances_adopts_the_template(cluster, controller, ec2):
    """(c), the middle point: the controller dies while RunInstances is held by the
    fault-injecting proxy in front of LocalStack (the launch template exists, no instance
    does). The next controller adopts the template and launches the instances once."""
    from test_crash_safety import Ec2Proxy
    proxy = Ec2Proxy()
    pc = f"{PC}-proxy"
    mr, name = f"cp-{RUN}-crash-mid", f"cp-{RUN}-crash-mid"
    try:
        kubectl_apply(cluster, [
            {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": pc},
             "spec": {"credentials": {"source": "Secret",
                                      "secretRef": {"namespace": NS, "name": "aws", "key": "credentials"}},
                      "aws": {"region": "us-east-1",
                              "endpoints": {"ec2": proxy.url, "sts": "http://127.0.0.1:4566"}},
                      "kubernetes": {"source": "InjectedIdentity"}, "defaultTeam": "search"}}])
        proxy.ctl("hold", action="RunInstances")
        c1 = controller()
        doc = pool_mr(mr, name)
        doc["spec"]["providerConfigRef"]["name"] = pc
        kubectl_apply(cluster, [doc])
        proxy.wait_held("RunInstances", timeout=60)
        c1.kill()
        proxy.ctl("release", action="RunInstances", forward=0)
        assert len(templates_by_pool_name(ec2, name)) == 1
        assert instances_by_pool_name(ec2, name) == []
        ann = get_mr(cluster, "gpucomputepool", mr)["metadata"]["annotations"]
        assert "crossplane.io/external-create-succeeded" not in ann

        creates, runs = proxy.calls("CreateLaunchTemplate"), proxy.calls("RunInstances")
        controller()
        wait_ready(cluster, "gpucomputepool", mr, timeout=120)
        assert len(instances_by_pool_name(ec2, name)) == 2
        assert len(templates_by_pool_name(ec2, name)) == 1
        assert proxy.calls("CreateLaunchTemplate") == creates, "the template was adopted"
        assert proxy.calls("RunInstances") - runs == 1, "the instances were launched once"
        time.sleep(7)
        assert len(instances_by_pool_name(ec2, name)) == 2
        cluster.run("delete", "gpucomputepool", mr, "--wait=false")
        wait_gone(cluster, "gpucomputepool", mr, timeout=120)
        assert instances_by_pool_name(ec2, name) == [] and templates_by_pool_name(ec2, name) == []
    finally:
        proxy.stop()
        cluster.run("delete", "providerconfig", pc, "--wait=false", check=False)


def test_leader_election_one_active_replica(cluster, controller):
    a = controller("--leader-election", "--namespace-for-lease", NS)
    wait_for("first replica leads", lambda: "became leader" in a.text(), timeout=30)
    b = controller("--leader-election", "--namespace-for-lease", NS)
    time.sleep(6)
    assert "became leader" not in b.text(), "only one replica may lead"
    lease = cluster.get("lease", "paved-crossplane-controller", ns=NS)
    assert lease["spec"]["holderIdentity"].endswith(f"-{a.proc.pid}")
    a.kill()
    wait_for("second replica takes over after the lease expires", lambda: "became leader" in b.text(), timeout=40)


def test_vector_db_and_feature_store_with_secret_reference(cluster, controller):
    """The two data kinds: Ready/Synced, connection secrets, a sensitive argument read from a
    Secret reference (never stored in the managed resource), deletion of every object."""
    import base64
    controller()
    db_mr, db = f"cp-{RUN}-vdb", f"vdb-{RUN}"
    fs_mr, fs = f"cp-{RUN}-fs", f"fs-{RUN}"
    kubectl_apply(cluster, [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "redis-conn", "namespace": NS},
         "stringData": {"conn": "redis.example:6380,password=s3cret"}},
        {"apiVersion": "paved.dev/v1alpha1", "kind": "VectorDB", "metadata": {"name": db_mr},
         "spec": {"providerConfigRef": {"name": PC},
                  "writeConnectionSecretToRef": {"name": f"{db}-conn", "namespace": NS},
                  "forProvider": {"name": db, "namespace": NS, "engine": "pgvector",
                                  "storage": {"size": "1Gi"},
                                  "collection": [{"name": "docs", "dimension": 384}]}}},
        {"apiVersion": "paved.dev/v1alpha1", "kind": "FeatureStore", "metadata": {"name": fs_mr},
         "spec": {"providerConfigRef": {"name": PC},
                  "forProvider": {"name": fs, "namespace": NS,
                                  "onlineStore": {"kind": "external", "connectionStringSecretRef":
                                                  {"namespace": NS, "name": "redis-conn", "key": "conn"}},
                                  "materialization": {"schedule": "0 * * * *"}}}},
    ])
    vdb = wait_ready(cluster, "vectordb", db_mr)
    assert vdb["metadata"]["annotations"]["crossplane.io/external-name"] == f"{NS}/{db}"
    at = vdb["status"]["atProvider"]
    assert at["status"] == "Ready" and at["port"] == 5432 and "apiKey" not in at, at
    conn = {k: base64.b64decode(v).decode() for k, v in cluster.get("secret", f"{db}-conn", ns=NS)["data"].items()}
    own = base64.b64decode(cluster.get("secret", f"{db}-credentials", ns=NS)["data"]["api-key"]).decode()
    assert conn["api_key"] == own and len(own) == 32, conn.keys()
    assert conn["endpoint"] == f"{db}.{NS}.svc.cluster.local" and conn["port"] == "5432"
    assert cluster.get("statefulset", db, ns=NS)["status"]["readyReplicas"] == 1

    store = wait_ready(cluster, "featurestore", fs_mr)
    assert store["status"]["atProvider"]["onlineStoreEndpoint"] == "redis.example:6380"
    # The connection string reached the store's own Secret and nowhere in the managed resource.
    stored = base64.b64decode(cluster.get("secret", f"{fs}-online-store", ns=NS)["data"]["connection-string"]).decode()
    assert stored == "redis.example:6380,password=s3cret"
    assert "s3cret" not in json.dumps(get_mr(cluster, "featurestore", fs_mr))
    assert cluster.get("cronjob", f"{fs}-materialize", ns=NS) is not None

    for kind, mr in [("featurestore", fs_mr), ("vectordb", db_mr)]:
        cluster.run("delete", kind, mr, "--wait=false")
        wait_gone(cluster, kind, mr)
    assert cluster.get("deployment", f"{fs}-server", ns=NS) is None
    assert cluster.get("statefulset", db, ns=NS) is None
    assert cluster.get("pvc", f"data-{db}-0", ns=NS) is None


def test_endpoint_rollouts_are_audited_traced_and_stamped(cluster, controller, tmp_path):
    """The controller's compliance sinks on a model endpoint's create, canary, promote, drift
    correction, failed canary + automatic rollback and delete: one intent and one result per
    change in --audit-file (valid, with the requester and paved's Kubernetes user), each
    mirrored as an Event on the MR; every object paved applied carries the claim's requester
    annotations; one OpenLineage run per rollout in --lineage-file, ended when the rollout is
    observed ready (COMPLETE) or fails (FAIL, with the error, before the rollback's own run)."""
    import jsonschema
    from test_compliance import lineage_validator
    trail, events_file = tmp_path / "audit.jsonl", tmp_path / "lineage.jsonl"
    controller("--audit-file", str(trail), "--lineage-file", str(events_file), "--lineage-namespace", "cp-test")
    mr, ep = f"cp-{RUN}-traced", f"traced-{RUN}"
    who = {"paved.dev/requested-by": "user:default/grace", "paved.dev/request-id": f"bs-task-{RUN}",
           "paved.dev/change-url": "https://git.example.com/platform/claims/pull/7"}
    kubectl_apply(cluster, [endpoint_mr(mr, ep, metadata={"annotations": who},
                                        forProvider={"model": {"uri": "s3://models/llm-7b", "version": "v1",
                                                               "digest": "sha256:4f1c8e0d2b7a"},
                                                     "autoscaling": {"minReplicas": 2, "maxReplicas": 3}})])
    wait_ready(cluster, "modelendpoint", mr)
    for kind in ("deployment", "service", "hpa", "networkpolicy", "serviceaccount"):
        ann = cluster.get(kind, ep, ns=NS)["metadata"]["annotations"]
        assert all(ann.get(k) == v for k, v in who.items()), (kind, ann)
        assert ann.get("paved.dev/audit-request-id"), (kind, ann)

    def records():
        return [json.loads(l) for l in trail.read_text().splitlines()] if trail.exists() else []

    def served(prefix):
        return (get_mr(cluster, "modelendpoint", mr)["status"].get("atProvider", {}).get("servedRevision", "")
                .startswith(prefix))

    def patch(fp):
        cluster.run("patch", "modelendpoint", mr, "--type=merge", "-p", json.dumps({"spec": {"forProvider": fp}}))

    patch({"canary": {"version": "v2", "image": "registry.local/model-server:2", "trafficPercent": 50}})
    wait_for("canary serving", lambda: "canary v2" in get_mr(cluster, "modelendpoint", mr)["status"]
             .get("atProvider", {}).get("servedRevision", ""), timeout=60)
    wait_ready(cluster, "modelendpoint", mr)
    patch({"model": {"version": "v2"}, "runtime": {"image": "registry.local/model-server:2"}, "canary": None})
    wait_for("v2 promoted", lambda: served("v2") and "canary" not in get_mr(cluster, "modelendpoint", mr)["status"]
             ["atProvider"]["servedRevision"], timeout=60)
    wait_ready(cluster, "modelendpoint", mr)
    cluster.run("set", "image", "-n", NS, f"deployment/{ep}", "server=registry.local/model-server:hotfix")
    wait_for("drift corrected", lambda: image_of(cluster, ep) == "registry.local/model-server:2", timeout=60)
    corrections = [r for r in records() if r["action"] == "drift_correct" and r["phase"] == "result"]
    assert any("runtime" in [c["argument"] for c in r["changed"]] for r in corrections), corrections
    wait_ready(cluster, "modelendpoint", mr)
    patch({"canary": {"version": "v3", "image": "registry.local/fail-readiness:3", "trafficPercent": 20}})
    wait_for("rolled back", lambda: any(r["action"] == "rollback" and r["phase"] == "result" for r in records()),
             timeout=120)
    reasons = events_for(cluster, mr)
    assert {"AuditIntent", "AuditResult"} <= reasons, reasons
    cluster.run("delete", "modelendpoint", mr, "--wait=false")
    wait_gone(cluster, "modelendpoint", mr)

    mine = [r for r in records() if r.get("resource_id") == f"{NS}/{ep}" or r.get("name") == ep]
    schema = json.loads((REPO / "docs" / "audit.schema.json").read_text())
    by_id = {}
    for r in mine:
        jsonschema.validate(r, schema)
        by_id.setdefault(r["request_id"], []).append(r)
    got = [(v[0]["action"], [x["phase"] for x in v]) for v in by_id.values()]
    assert [p for _, p in got] == [["intent", "result"]] * len(by_id), got
    actions = [v[0]["action"] for v in by_id.values()]
    assert actions == ["create", "update", "update", "drift_correct", "update", "rollback", "delete"], actions
    for intent, result in by_id.values():
        assert intent["requester"] == "user:default/grace" and result["result"] == "succeeded", (intent, result)
        assert result["actor"].get("kubernetes"), result

    check = lineage_validator()
    events = [json.loads(l) for l in events_file.read_text().splitlines()]
    runs = {}
    for e in events:
        check(e)
        assert e["job"]["name"] == f"paved_model_endpoint.{NS}/{ep}" and e["job"]["namespace"] == "cp-test"
        runs.setdefault(e["run"]["runId"], []).append(e["eventType"])
    ids = list(by_id)
    # The create, the canary, the promote and the drift correction completed once ready; the bad
    # canary failed; the rollback is a run of its own.
    assert [runs.get(i) for i in ids[:6]] == [["START", "COMPLETE"]] * 4 + [["START", "FAIL"], ["START", "COMPLETE"]], runs
    fail = [e for e in events if e["eventType"] == "FAIL"][0]
    assert "ProgressDeadlineExceeded" in fail["run"]["facets"]["errorMessage"]["message"], fail
    rollback_end = [e for e in events if e["run"]["runId"] == ids[5]][-1]
    assert rollback_end["run"]["facets"]["paved_change"]["action"] == "rollback"
    assert rollback_end["run"]["facets"]["errorMessage"]["message"] == fail["run"]["facets"]["errorMessage"]["message"]


def test_impersonated_writes_name_the_requester_in_the_apiserver_audit_log(cluster, controller):
    """ProviderConfig kubernetes.impersonateRequester: the controller sends a change's writes
    with Impersonate-User set to the MR's paved.dev/requested-by, so the kube-apiserver audit
    log (cluster/up.sh runs it with an audit policy) names paved as the user and the requester
    as the impersonated user, and RBAC applies to the requester: one without rights in the
    namespace gets Forbidden and nothing is created."""
    audit_log = CLUSTER_DIR / "kube-apiserver-audit.log"
    pc = f"{PC}-imp"
    spec = json.loads(cluster.run("get", "providerconfig", PC, "-o", "json").stdout)["spec"]
    spec.setdefault("kubernetes", {})["impersonateRequester"] = True
    allowed, denied = f"grace-{RUN}@example.com", f"mallory-{RUN}@example.com"
    kubectl_apply(cluster, [
        {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": pc}, "spec": spec},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": f"grace-{RUN}", "namespace": NS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": allowed}]},
    ])
    controller()
    ok_mr, ok_ep, no_mr, no_ep = f"cp-{RUN}-imp", f"imp-{RUN}", f"cp-{RUN}-noimp", f"noimp-{RUN}"
    docs = []
    for mr, ep, who in ((ok_mr, ok_ep, allowed), (no_mr, no_ep, denied)):
        d = endpoint_mr(mr, ep, metadata={"annotations": {"paved.dev/requested-by": who}})
        d["spec"]["providerConfigRef"]["name"] = pc
        docs.append(d)
    kubectl_apply(cluster, docs)
    try:
        wait_ready(cluster, "modelendpoint", ok_mr)
        seen = []

        def forbidden():
            c = condition(get_mr(cluster, "modelendpoint", no_mr), "Synced")
            seen.append(c.get("message"))
            return c if c.get("status") == "False" and "forbidden" in c.get("message", "") else None
        try:
            synced = wait_for("Synced=False, forbidden", forbidden, timeout=60)
        except AssertionError:
            raise AssertionError(sorted(set(map(str, seen))))
        assert synced["status"] == "False" and denied in synced["message"], synced
        assert cluster.get("deployment", no_ep, ns=NS) is None

        def entries():
            out = []
            for line in audit_log.read_text(errors="replace").splitlines():
                e = json.loads(line)
                ref = e.get("objectRef") or {}
                if ref.get("resource") == "deployments" and ref.get("name") == ok_ep and e.get("verb") == "patch":
                    out.append(e)
            return out
        found = wait_for("audit entries", lambda: entries() or None, timeout=30)
        for e in found:
            assert e["user"]["username"] == "paved-admin", e["user"]
            assert e["impersonatedUser"]["username"] == allowed, e
        assert any(e["responseStatus"]["code"] in (200, 201) for e in found), found
    finally:
        for mr in (ok_mr, no_mr):
            cluster.run("delete", "modelendpoint", mr, "--wait=false", check=False)
        for mr in (ok_mr, no_mr):
            wait_gone(cluster, "modelendpoint", mr)
        cluster.run("delete", "providerconfig", pc, "--wait=false", check=False)
        cluster.run("delete", "rolebinding", f"grace-{RUN}", "-n", NS, check=False)
    assert cluster.get("deployment", ok_ep, ns=NS) is None
