"""The golden path in one apply (examples/golden_path): GPU pool on EC2 (LocalStack) + pgvector
database + feature store + model endpoint on the pool's GPUs, wired together. The pool's
instances join the local control plane through cluster/node_joiner.py, the local stand-in for
the join hook the pool's bootstrap calls on AWS."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ENDPOINT, pool_instances, pool_templates

HERE = Path(__file__).resolve().parent


@pytest.fixture
def node_joiner(cluster):
    p = subprocess.Popen([sys.executable, str(HERE / "cluster" / "node_joiner.py"), "--kubeconfig", cluster.kubeconfig,
                          "--kubectl", cluster.bin, "--endpoint", ENDPOINT, "--interval", "0.5"],
                         stderr=subprocess.PIPE, text=True)
    yield p
    p.terminate()
    p.wait(timeout=10)
    # Nodes it joined for instances that outlive the test (other tests' pools) leave with it.
    cluster.run("delete", "nodes", "-l", "paved.dev/joined-by=node-joiner", "--wait=false", check=False)


def joined_nodes(cluster, pool_id):
    return cluster.get("nodes", ns="default", selector=f"paved.dev/pool-id={pool_id}")["items"]


def test_golden_path_in_one_apply(example, cluster, ec2, node_joiner):
    tf = example("golden_path")
    kc = ("-var", f"kubeconfig={cluster.kubeconfig}")
    tf.run("validate")
    # Cost is known in the plan for all four resources, and applying that very plan stores the
    # same figures (the CLI itself refuses an apply whose result differs from a known planned value).
    tf.run("plan", "-input=false", "-out=plan.tfplan", *kc)
    plan = tf.json("show", "-json", "plan.tfplan")
    planned = {}
    for rc in plan["resource_changes"]:
        if rc["type"].startswith("paved_") and rc["mode"] == "managed":
            after, unknown = rc["change"]["after"], rc["change"]["after_unknown"]
            # after_unknown marks a known object as {} and an unknown one as true.
            assert not unknown.get("monthly_cost_usd") and after["monthly_cost_usd"]["min"] > 0, rc
            m = after["monthly_cost_usd"]
            assert m["min"] <= m["max"], rc
            planned[rc["address"]] = m
    assert len(planned) == 4, planned
    # Fixed-size resources know their hourly cost now; the pool and the endpoint only once
    # instances and replicas exist.
    by_addr = {rc["address"]: rc["change"] for rc in plan["resource_changes"]}
    for a in ("paved_vector_db.docs", "paved_feature_store.users"):
        c = by_addr[a]
        assert not c["after_unknown"].get("hourly_cost_usd") and abs(c["after"]["monthly_cost_usd"]["min"] - c["after"]["hourly_cost_usd"] * 730) < 0.011, c
    assert by_addr["paved_model_endpoint.assistant"]["after_unknown"].get("hourly_cost_usd") is True
    tf.run("apply", "-input=false", "plan.tfplan")
    for a, m in planned.items():
        assert tf.state(a)["monthly_cost_usd"] == m, a

    pool = tf.state("paved_gpu_compute_pool.serving")
    pool_id = pool["id"]
    assert len(pool_instances(ec2, pool_id, states=("pending", "running"))) == 2
    nodes = joined_nodes(cluster, pool_id)
    assert len(nodes) == 2 and all(n["metadata"]["labels"]["paved.dev/cuda-version"] == "12.2" for n in nodes)

    ep = tf.state("paved_model_endpoint.assistant")
    assert ep["status"] == "Ready" and ep["ready_replicas"] == 2, ep
    # What runs now: the two ready replicas, at the per-replica price behind the monthly range.
    per_replica = planned["paved_model_endpoint.assistant"]["max"] / ep["autoscaling"]["max_replicas"] / 730
    assert abs(ep["hourly_cost_usd"] - 2 * per_replica) < 0.01, ep
    assert tf.state("paved_gpu_compute_pool.serving")["hourly_cost_usd"] > 0
    assert ep["lineage"]["pool_id"] == pool_id
    assert ep["lineage"]["vector_db"] == "default/rag-docs" and ep["lineage"]["feature_store"] == "default/rag-users"
    # The endpoint's GPU pods run on the pool's own nodes.
    node_names = {n["metadata"]["name"] for n in nodes}
    pods = cluster.get("pods", selector="paved.dev/endpoint=rag-assistant")["items"]
    assert len(pods) == 2 and {p["spec"]["nodeName"] for p in pods} <= node_names, pods
    # Connection details are injected from the database's Secret and the store's ConfigMap.
    c = cluster.get("deployment", "rag-assistant")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["VECTOR_DB_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "rag-docs-credentials", "key": "api-key"}
    assert env["FEAST_FEATURE_SERVER_URL"]["valueFrom"]["configMapKeyRef"]["name"] == "rag-users-feast"
    assert {"name": "feast", "mountPath": "/etc/feast", "readOnly": True} in c["volumeMounts"]
    ann = cluster.get("deployment", "rag-assistant")["metadata"]["annotations"]
    assert ann["paved.dev/vector-db"] == "default/rag-docs" and ann["paved.dev/feature-store"] == "default/rag-users"
    store = tf.state("paved_feature_store.users")
    assert store["online_store_endpoint"] == "rag-docs.default.svc.cluster.local:5432"

    # One attribution family on every object: EC2 instances, volumes and launch templates carry
    # the same `team` / `project` keys as every Kubernetes object paved made (pods included, so
    # OpenCost's default `team` label attributes them).
    team_of = {a: tf.state(a)["team"] for a in planned}
    def tags(t):
        return {x["Key"]: x["Value"] for x in t.get("Tags", [])}
    by_pool = [{"Name": "tag:paved:pool-id", "Values": [pool_id]}]
    ec2_objects = [("instance", i) for r in ec2.describe_instances(Filters=by_pool)["Reservations"] for i in r["Instances"]] \
        + [("volume", v) for v in ec2.describe_volumes(Filters=by_pool)["Volumes"]] \
        + [("launch template", t) for t in ec2.describe_launch_templates(Filters=by_pool)["LaunchTemplates"]]
    assert {k for k, _ in ec2_objects} >= {"instance", "launch template"}, ec2_objects
    for kind, o in ec2_objects:
        assert tags(o).get("team") == team_of["paved_gpu_compute_pool.serving"] and tags(o).get("project"), (kind, tags(o))
    kinds = ["deployments", "statefulsets", "pods", "services", "configmaps", "secrets", "networkpolicies",
             "poddisruptionbudgets", "horizontalpodautoscalers", "serviceaccounts", "persistentvolumeclaims"]
    seen = 0
    for kind in kinds:
        for o in cluster.get(kind, selector="app.kubernetes.io/part-of=paved")["items"]:
            labels = o["metadata"].get("labels", {})
            if kind == "persistentvolumeclaims" and "paved.dev/team" in labels and "team" not in labels:
                continue  # made from a StatefulSet's claim template, which Kubernetes keeps frozen
            assert labels.get("team") and labels.get("team") == labels.get("paved.dev/team"), (kind, o["metadata"])
            assert labels.get("project"), (kind, o["metadata"])
            seen += 1
    assert seen >= 15, seen
    assert {labels["team"] for kind in ("pods",) for labels in
            (p["metadata"]["labels"] for p in cluster.get("pods", selector="app.kubernetes.io/part-of=paved")["items"])} \
        <= set(team_of.values())

    assert tf.plan_exitcode(*kc)[0] == 0

    tf.run("destroy", "-auto-approve", *kc)
    assert pool_instances(ec2, pool_id) == [] and pool_templates(ec2, pool_id) == []
    for kind, sel in [("deployments", "app.kubernetes.io/part-of=paved"), ("statefulsets", "app.kubernetes.io/part-of=paved"),
                      ("pods", "app.kubernetes.io/part-of=paved"), ("persistentvolumeclaims", "app.kubernetes.io/part-of=paved"),
                      ("secrets", "app.kubernetes.io/part-of=paved"), ("configmaps", "app.kubernetes.io/part-of=paved")]:
        assert cluster.get(kind, selector=sel)["items"] == [], kind
    deadline = time.monotonic() + 20
    while joined_nodes(cluster, pool_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert joined_nodes(cluster, pool_id) == []
