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
    tf.apply(*kc)

    pool = tf.state("paved_gpu_compute_pool.serving")
    pool_id = pool["id"]
    assert len(pool_instances(ec2, pool_id, states=("pending", "running"))) == 2
    nodes = joined_nodes(cluster, pool_id)
    assert len(nodes) == 2 and all(n["metadata"]["labels"]["paved.dev/cuda-version"] == "12.2" for n in nodes)

    ep = tf.state("paved_model_endpoint.assistant")
    assert ep["status"] == "Ready" and ep["ready_replicas"] == 2, ep
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
