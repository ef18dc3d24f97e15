"""Least privilege, proven by the API server: the controller runs with nothing but a token of
the ServiceAccount that `crossplane generate-rbac` describes (ClusterRole, lease Role, events
Role), against the real control plane with RBAC authorization, and drives create → update →
delete of every managed kind to Ready and gone with no call forbidden. Then one rule is taken
away and the forbidden call must surface as Synced=False naming it, while the controller keeps
running and other objects keep reconciling; given the rule back, the object recovers.

Names are unique per run (prefix `rbac-`), so runs can share the control plane."""
import base64
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import PROVIDER_BIN, REPO, pool_instances, pool_templates
from test_crossplane import condition, wait_for

RUN = uuid.uuid4().hex[:6]
NS = f"rbac-{RUN}"
PC = f"rbac-{RUN}"
SUFFIX = f"-{RUN}"
KINDS = ["gpucomputepools", "modelendpoints", "vectordbs", "featurestores"]


def apply(k, docs, verb="apply"):
    text = "\n---\n".join(json.dumps(d) for d in docs)
    p = subprocess.run([k.bin, "--kubeconfig", k.kubeconfig, verb, "-f", "-"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def wait_ready(k, kind, name, timeout=120):
    def ok():
        o = k.get(kind, name)
        return o if condition(o, "Ready").get("status") == "True" and condition(o, "Synced").get("status") == "True" else None
    try:
        return wait_for(f"{kind}/{name} Ready and Synced", ok, timeout)
    except AssertionError:
        raise AssertionError(f"{kind}/{name} not Ready/Synced:\n{json.dumps(k.get(kind, name), indent=1)}")


def wait_gone(k, kind, name, ns="default", timeout=180):
    wait_for(f"{kind}/{name} gone", lambda: k.get(kind, name, ns=ns) is None, timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def rbac_objects(tmp: Path):
    """The generated manifests for a controller in NS, cluster-wide names made unique."""
    out = tmp / "rbac"
    subprocess.run([str(PROVIDER_BIN), "crossplane", "generate-rbac", "--out", str(out), "--namespace", NS],
                   check=True, capture_output=True, text=True)
    docs = [d for d in yaml.safe_load_all((out / "rbac.yaml").read_text()) if d]
    for d in docs:
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding") or d["metadata"].get("namespace") == "default":
            d["metadata"]["name"] += SUFFIX
        if "roleRef" in d and (d["kind"] == "ClusterRoleBinding" or d["metadata"].get("namespace") == "default"):
            d["roleRef"]["name"] += SUFFIX
    return docs


class Controller:
    def __init__(self, kubeconfig: Path, log: Path, health_port: int):
        self.log = log
        self.fh = open(log, "w")
        self.proc = subprocess.Popen(
            [str(PROVIDER_BIN), "crossplane", "--kubeconfig", str(kubeconfig), "--poll", "3s",
             "--max-reconcile-rate", "20", "--leader-election", "--namespace-for-lease", NS,
             "--health-port", str(health_port)],
            stdout=self.fh, stderr=subprocess.STDOUT, env=dict(os.environ, HOSTNAME=f"rbac-{RUN}"))

    def text(self):
        return self.log.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.fh.close()


@pytest.fixture(scope="module")
def env(cluster, tmp_path_factory):
    """Namespace, generated RBAC, a kubeconfig holding only the ServiceAccount's token, the
    ProviderConfig, and the controller running as that ServiceAccount."""
    assert PROVIDER_BIN.exists(), f"build the provider first: {PROVIDER_BIN} is missing"
    tmp = tmp_path_factory.mktemp("rbac")
    k = cluster
    k.run("apply", "-f", str(REPO / "package" / "crds"))
    for kind in KINDS + ["providerconfigs"]:
        k.run("wait", "--for=condition=Established", f"crd/{kind}.paved.dev", "--timeout=60s")
    apply(k, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])
    docs = rbac_objects(tmp)
    apply(k, docs)
    token = k.run("create", "token", "provider-paved", "-n", NS, "--duration=2h").stdout.strip()
    admin = json.loads(k.run("config", "view", "--raw", "--minify", "-o", "json").stdout)
    cl = admin["clusters"][0]["cluster"]
    kubeconfig = tmp / "sa.kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "local", "cluster": cl}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": "sa"}}],
    }))
    # The token really is that ServiceAccount, with no more than its roles.
    who = subprocess.run([k.bin, "--kubeconfig", str(kubeconfig), "auth", "can-i", "create", "pods", "-n", NS],
                         capture_output=True, text=True)
    assert who.stdout.strip() == "no", who.stdout + who.stderr
    apply(k, [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "aws", "namespace": NS},
         "stringData": {"credentials": "[default]\naws_access_key_id = test\naws_secret_access_key = test\n"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "redis-conn", "namespace": NS},
         "stringData": {"conn": "redis.example:6380,password=s3cret"}},
        {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": PC},
         "spec": {"credentials": {"source": "Secret", "secretRef": {"namespace": NS, "name": "aws", "key": "credentials"}},
                  "aws": {"region": "us-east-1",
                          "endpoints": {"ec2": "http://127.0.0.1:4566", "sts": "http://127.0.0.1:4566"}},
                  "kubernetes": {"source": "InjectedIdentity"},
                  "defaultTeam": "search", "defaultProject": "ranking"}},
    ])
    port = free_port()
    c = Controller(kubeconfig, tmp / "controller.log", port)
    yield {"k": k, "docs": docs, "controller": c, "health": f"http://127.0.0.1:{port}", "tmp": tmp}
    c.stop()
    for kind in KINDS:
        for i in json.loads(k.run("get", kind, "-o", "json").stdout)["items"]:
            n = i["metadata"]["name"]
            if n.startswith(f"rbac-{RUN}"):
                k.run("patch", kind, n, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}', check=False)
                k.run("delete", kind, n, "--wait=false", check=False)
    k.run("delete", "providerconfig", PC, "--wait=false", check=False)
    for d in docs:
        if d["kind"] in ("ClusterRole", "ClusterRoleBinding") or d["metadata"].get("namespace") == "default":
            k.run("delete", d["kind"].lower(), d["metadata"]["name"], *(["-n", "default"] if d["metadata"].get("namespace") else []),
                  "--wait=false", check=False)
    k.run("delete", "namespace", NS, "--wait=false", check=False)


def pool(name, desired=2):
    return {"apiVersion": "paved.dev/v1alpha1", "kind": "GpuComputePool", "metadata": {"name": name},
            "spec": {"providerConfigRef": {"name": PC}, "forProvider": {
                "name": name, "team": "recsys", "imageId": "ami-04681a1dbd79675a5",
                "availabilityZones": ["us-east-1a"], "accelerator": {"type": "nvidia-a10g", "count": 1},
                "nodes": {"min": 0, "max": 4, "desired": desired},
                "cudaVersion": "12.2", "driverVersion": "535.104.05"}}}


def endpoint(name, version="v1"):
    return {"apiVersion": "paved.dev/v1alpha1", "kind": "ModelEndpoint", "metadata": {"name": name},
            "spec": {"providerConfigRef": {"name": PC},
                     "writeConnectionSecretToRef": {"name": f"{name}-conn", "namespace": NS},
                     "forProvider": {
                         "name": name, "namespace": NS, "poolId": "gp-local",
                         "model": {"uri": "s3://models/llm-7b", "version": version},
                         "runtime": {"image": "registry.local/model-server:1", "cudaVersion": "12.2"},
                         "resources": {"gpus": 1, "cpu": "1", "memory": "1Gi"},
                         "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
                         "health": {"startupTimeout": "20s"}, "rollout": {"timeout": "1m"}}}}


READER = f"{NS}-r"


def vector_db(name, collections, allowed=()):
    """A pgvector database owned by team NS with a credential per team (NS, and `allowed`)."""
    return {"apiVersion": "paved.dev/v1alpha1", "kind": "VectorDB", "metadata": {"name": name},
            "spec": {"providerConfigRef": {"name": PC},
                     "writeConnectionSecretToRef": {"name": f"{name}-conn", "namespace": NS},
                     "forProvider": {"name": name, "namespace": NS, "engine": "pgvector",
                                     "team": NS, "allowedTeams": list(allowed), "teamCredentials": True,
                                     "rotationDays": 30, "storage": {"size": "1Gi"},
                                     "collection": [{"name": c, "dimension": 384} for c in collections]}}}


def team_secrets_of(k, db):
    out = k.run("get", "secrets", "-A", "-o", "json",
                "-l", f"paved.dev/vector-db={db},paved.dev/role=team-credential").stdout
    return sorted(f'{s["metadata"]["namespace"]}/{s["metadata"]["name"]}' for s in json.loads(out)["items"])


def feature_store(name, schedule):
    return {"apiVersion": "paved.dev/v1alpha1", "kind": "FeatureStore", "metadata": {"name": name},
            "spec": {"providerConfigRef": {"name": PC},
                     "forProvider": {"name": name, "namespace": NS,
                                     "onlineStore": {"kind": "external", "connectionStringSecretRef":
                                                     {"namespace": NS, "name": "redis-conn", "key": "conn"}},
                                     "materialization": {"schedule": schedule}}}}


def jobs_of(k, db):
    return sorted(j["metadata"]["name"] for j in k.get("jobs", ns=NS, selector=f"paved.dev/vector-db={db}")["items"])


def test_every_kind_lifecycle_with_only_the_generated_rbac(env, ec2):
    k, c = env["k"], env["controller"]
    wait_for("/readyz 200", lambda: http_status(env["health"] + "/readyz") == 200, timeout=30)
    assert http_status(env["health"] + "/healthz") == 200
    wait_for("leadership", lambda: "became leader" in c.text(), timeout=30)
    lease = k.get("lease", "paved-crossplane-controller", ns=NS)
    assert lease["spec"]["holderIdentity"].startswith(f"rbac-{RUN}-")

    p, ep, db, fs = (f"rbac-{RUN}-{x}" for x in ("pool", "ep", "db", "fs"))
    apply(k, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": READER}}])
    apply(k, [pool(p), endpoint(ep), vector_db(db, ["docs"], [READER]), feature_store(fs, "0 * * * *")])
    pool_id = wait_ready(k, "gpucomputepool", p)["metadata"]["annotations"]["crossplane.io/external-name"]
    assert len(pool_instances(ec2, pool_id)) == 2
    wait_ready(k, "modelendpoint", ep)
    assert k.get("networkpolicy", ep, ns=NS) is not None and k.get("serviceaccount", ep, ns=NS) is not None
    conn = k.get("secret", f"{ep}-conn", ns=NS)
    assert base64.b64decode(conn["data"]["url"]).decode() == f"http://{ep}.{NS}.svc.cluster.local"
    wait_ready(k, "vectordb", db)
    bootstrap = f"paved.dev/vector-db={db},paved.dev/role=bootstrap"
    first_jobs = sorted(j["metadata"]["name"] for j in k.get("jobs", ns=NS, selector=bootstrap)["items"])
    assert len(first_jobs) == 1
    # Team credentials: a Secret in each team's namespace, written across namespaces.
    assert team_secrets_of(k, db) == sorted([f"{NS}/{db}-{NS}-credentials", f"{READER}/{db}-{READER}-credentials"])
    assert sorted(k.get("vectordb", db)["status"]["atProvider"]["teamSecrets"]) == sorted([NS, READER])
    wait_ready(k, "featurestore", fs)
    assert k.get("cronjob", f"{fs}-materialize", ns=NS)["spec"]["schedule"] == "0 * * * *"

    # Updates, each through a different code path: resize in EC2, a new Deployment revision, a
    # new bootstrap Job (the old one found by label and deleted), a patched CronJob.
    k.run("patch", "gpucomputepool", p, "--type=merge", "-p", '{"spec":{"forProvider":{"nodes":{"desired":3}}}}')
    apply(k, [endpoint(ep, "v2"), vector_db(db, ["docs", "faq"]), feature_store(fs, "*/30 * * * *")])
    wait_for("3 instances", lambda: len(pool_instances(ec2, pool_id)) == 3, timeout=90)
    wait_for("v2 served", lambda: (k.get("modelendpoint", ep)["status"]["atProvider"].get("servedRevision") or "").startswith("v2"), timeout=90)
    wait_for("new bootstrap Job, old one deleted",
             lambda: (lambda j: len(j) == 1 and j != first_jobs)(
                 sorted(x["metadata"]["name"] for x in k.get("jobs", ns=NS, selector=bootstrap)["items"])), timeout=120)
    # The reader team was removed from allowedTeams: its Secret is revoked.
    wait_for("reader's Secret revoked", lambda: team_secrets_of(k, db) == [f"{NS}/{db}-{NS}-credentials"], timeout=120)
    wait_ready(k, "vectordb", db)
    wait_for("CronJob updated", lambda: k.get("cronjob", f"{fs}-materialize", ns=NS)["spec"]["schedule"] == "*/30 * * * *", timeout=60)
    for kind, name in [("gpucomputepool", p), ("modelendpoint", ep), ("vectordb", db), ("featurestore", fs)]:
        wait_ready(k, kind, name)

    for kind, name in [("featurestore", fs), ("modelendpoint", ep), ("vectordb", db), ("gpucomputepool", p)]:
        k.run("delete", kind, name, "--wait=false")
    for kind, name in [("featurestore", fs), ("modelendpoint", ep), ("vectordb", db), ("gpucomputepool", p)]:
        wait_gone(k, kind, name)
    assert pool_instances(ec2, pool_id) == [] and pool_templates(ec2, pool_id) == []
    for kind, name in [("deployment", ep), ("networkpolicy", ep), ("statefulset", db), ("deployment", f"{fs}-server"),
                       ("pvc", f"data-{db}-0"), ("cronjob", f"{fs}-materialize")]:
        assert k.get(kind, name, ns=NS) is None, (kind, name)
    assert jobs_of(k, db) == []
    assert team_secrets_of(k, db) == []
    k.run("delete", "namespace", READER, "--wait=false", check=False)

    assert c.proc.poll() is None, "the controller must still be running"
    log = c.text()
    assert "forbidden" not in log.lower(), [l for l in log.splitlines() if "forbidden" in l.lower()][:5]


def test_a_missing_rule_is_reported_not_fatal(env, ec2):
    k, c = env["k"], env["controller"]
    [role] = [d for d in env["docs"] if d["kind"] == "ClusterRole"]
    narrowed = json.loads(json.dumps(role))
    narrowed["rules"] = [r for r in role["rules"] if r["apiGroups"] != ["networking.k8s.io"]]
    assert len(narrowed["rules"]) == len(role["rules"]) - 1, "exactly one rule is for NetworkPolicies"
    # replace (PUT), not apply: an apply would keep the rule, a delete would leave a gap.
    apply(k, [narrowed], verb="replace")
    ep, p = f"rbac-{RUN}-denied", f"rbac-{RUN}-pool2"
    try:
        wait_for("NetworkPolicy patch forbidden", lambda: subprocess.run(
            [k.bin, "--kubeconfig", str(env["tmp"] / "sa.kubeconfig"), "auth", "can-i", "patch",
             "networkpolicies.networking.k8s.io", "-n", NS], capture_output=True, text=True).stdout.strip() == "no", timeout=20)
        apply(k, [endpoint(ep), pool(p, desired=1)])
        synced = wait_for("Synced=False naming the forbidden call", lambda: (lambda s: s if s.get("status") == "False"
                          and "forbidden" in s.get("message", "") else None)(condition(k.get("modelendpoint", ep), "Synced")), timeout=90)
        msg = synced["message"]
        assert "networkpolicies" in msg and "patch" in msg and f"system:serviceaccount:{NS}:provider-paved" in msg, msg
        assert synced["reason"] == "ReconcileError", synced
        # Other objects keep reconciling, the controller keeps running.
        wait_ready(k, "gpucomputepool", p)
        assert c.proc.poll() is None
        assert http_status(env["health"] + "/healthz") == 200
        assert k.get("networkpolicy", ep, ns=NS) is None
    finally:
        apply(k, [role], verb="replace")
    # With the rule back the same object converges, on its own retry.
    wait_ready(k, "modelendpoint", ep, timeout=150)
    assert k.get("networkpolicy", ep, ns=NS) is not None
    for kind, name in [("modelendpoint", ep), ("gpucomputepool", p)]:
        k.run("delete", kind, name, "--wait=false")
    for kind, name in [("modelendpoint", ep), ("gpucomputepool", p)]:
        wait_gone(k, kind, name)
    assert c.proc.poll() is None
