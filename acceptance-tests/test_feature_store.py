"""paved_feature_store end to end against the local control plane, with the real Terraform CLI."""
import base64

KINDS = ["deployments", "statefulsets", "pods", "services", "secrets", "configmaps", "networkpolicies",
         "cronjobs", "persistentvolumeclaims"]


def objects(cluster, store):
    return {k: [i["metadata"]["name"] for i in cluster.get(k, selector=f"paved.dev/feature-store={store}")["items"]] for k in KINDS}


def test_lifecycle(example, cluster):
    tf = example("feature_store")
    kc = ("-var", f"kubeconfig={cluster.kubeconfig}")
    tf.run("validate")
    tf.apply(*kc)
    drivers, items = tf.state("paved_feature_store.drivers"), tf.state("paved_feature_store.items")
    assert drivers["status"] == "Ready" and items["status"] == "Ready", (drivers["status"], items["status"])
    assert drivers["online_store_endpoint"] == "drivers-redis.default.svc.cluster.local:6379"
    assert items["online_store_endpoint"] == "embeddings.default.svc.cluster.local:5432"
    assert drivers["feature_server_url"] == "http://drivers.default.svc.cluster.local"
    assert drivers["client_config_map"] == "drivers-feast" and items["feast_project"] == "items"

    # The client configuration: Feast's own format, secrets only as ${VAR} references.
    cm = cluster.get("configmap", "drivers-feast")["data"]
    yaml = cm["feature_store.yaml"]
    assert 'project: "driver_stats"' in yaml and "type: redis" in yaml
    assert "password=${FEAST_ONLINE_STORE_SECRET}" in yaml
    password = base64.b64decode(cluster.get("secret", "drivers-online-store")["data"]["password"]).decode()
    assert len(password) == 32 and password not in yaml
    items_yaml = cluster.get("configmap", "items-feast")["data"]["feature_store.yaml"]
    assert "type: postgres" in items_yaml and "vector_enabled: true" in items_yaml
    assert 'path: "s3://pricing-feast/registry.db"' in items_yaml
    # The pgvector-backed store reads the database's credential from its Secret.
    env = cluster.get("deployment", "items-server")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "FEAST_ONLINE_STORE_SECRET",
            "valueFrom": {"secretKeyRef": {"name": "embeddings-credentials", "key": "api-key"}}} in env
    assert cluster.get("deployment", "items-server")["status"]["availableReplicas"] == 2

    # Managed Redis with a bound volume; the file-backed store gets its own volume.
    assert cluster.get("statefulset", "drivers-redis")["status"]["readyReplicas"] == 1
    assert cluster.get("pvc", "drivers-data")["status"]["phase"] == "Bound"
    assert cluster.get("pvc", "data-drivers-redis-0")["status"]["phase"] == "Bound"
    assert cluster.get("statefulset", "items-redis") is None
    dep = cluster.get("deployment", "drivers-server")
    assert dep["spec"]["strategy"]["type"] == "Recreate"
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert cluster.get("cronjob", "drivers-materialize")["spec"]["schedule"] == "0 * * * *"
    np = cluster.get("networkpolicy", "drivers-redis")
    assert np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {"paved.dev/team": "pricing"}
    # allowed_teams reach the feature server only; the Redis password stays with the owner.
    np = cluster.get("networkpolicy", "drivers")
    assert np["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"] == [
        {"key": "paved.dev/team", "operator": "In", "values": ["pricing", "fraud"]}]

    assert tf.plan_exitcode(*kc)[0] == 0

    # In-place update of the server image.
    img = ("-var", "server_image=feastdev/feature-server:0.48.0")
    tf.apply(*kc, *img)
    dep = cluster.get("deployment", "drivers-server")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "feastdev/feature-server:0.48.0"
    assert tf.plan_exitcode(*kc, *img)[0] == 0

    # Drift: a deleted CronJob shows as Degraded and the next apply repairs it.
    cluster.run("delete", "cronjob", "drivers-materialize")
    code, out = tf.plan_exitcode(*kc, *img)
    assert code == 2 and "CronJob drivers-materialize is missing" in out, out
    tf.apply(*kc, *img)
    assert cluster.get("cronjob", "drivers-materialize") is not None
    assert tf.plan_exitcode(*kc, *img)[0] == 0

    # Import by namespace/name.
    before = tf.state("paved_feature_store.items")
    tf.run("state", "rm", "paved_feature_store.items")
    tf.run("import", *kc, *img, "paved_feature_store.items", "default/items")
    after = tf.state("paved_feature_store.items")
    assert {k: v for k, v in after.items() if k != "timeouts"} == {k: v for k, v in before.items() if k != "timeouts"}
    tf.run("apply", "-refresh-only", "-auto-approve", *kc, *img)
    assert tf.plan_exitcode(*kc, *img)[0] == 0

    tf.run("destroy", "-auto-approve", *kc, *img)
    for store in ("drivers", "items"):
        assert all(v == [] for v in objects(cluster, store).values()), objects(cluster, store)
    assert cluster.get("statefulsets", selector="paved.dev/vector-db=embeddings")["items"] == []


def test_missing_vector_db_fails_before_changing_anything(tmp_path, cli, cluster):
    (tmp_path / "main.tf").write_text(f'''
terraform {{
  required_providers {{
    paved = {{ source = "paved/paved" }}
  }}
}}
provider "paved" {{
  default_team = "pricing"
  kubernetes {{
    config_path = "{cluster.kubeconfig}"
  }}
}}
resource "paved_feature_store" "orphan" {{
  name = "orphan"
  online_store {{
    kind         = "vector_db"
    vector_db_id = "default/nowhere"
  }}
}}
''')
    tf = cli.runner(tmp_path)
    code, out = tf.run("apply", "-auto-approve", check=False)
    assert code == 1 and "Vector database not found" in out and "vector_db_id" in out, out
    assert tf.run("state", "list")[1].strip() == ""
    assert objects(cluster, "orphan") == {k: [] for k in KINDS}
