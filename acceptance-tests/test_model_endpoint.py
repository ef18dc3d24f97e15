"""paved_model_endpoint end to end: the real Terraform CLI and provider against a real
kube-apiserver/controller-manager/scheduler with kwok nodes (GPU nodes included).

Every check reads the cluster through the API (kubectl), not only Terraform's state."""
import json
import time

from conftest import plan_summary

ADDR = "paved_model_endpoint.llm"
SEL = "paved.dev/endpoint=llm"
KINDS = ["deployments", "replicasets", "pods", "services", "horizontalpodautoscalers",
         "poddisruptionbudgets", "networkpolicies", "serviceaccounts"]


def objects(cluster):
    out = {}
    for k in KINDS:
        items = cluster.get(k, selector=SEL)["items"]
        if k == "serviceaccounts":
            items = [i for i in items if i["metadata"]["name"] == "llm"]
        out[k] = items
    return out


def test_lifecycle(example, cluster):
    tf = example("model_endpoint")
    kc = ("-var", f"kubeconfig={cluster.kubeconfig}")
    tf.run("validate")
    # Plans need no cluster.
    code, out = tf.plan_exitcode("-var", "kubeconfig=/nonexistent")
    assert code == 2 and plan_summary(out) == (1, 0, 0), out

    started = time.monotonic()
    tf.apply(*kc)
    elapsed = time.monotonic() - started
    ep = tf.state(ADDR)
    assert ep["status"] == "Ready" and ep["ready_replicas"] == 5, ep
    assert ep["served_revision"].startswith("v1 (revision 1)"), ep["served_revision"]
    assert ep["url"] == "http://llm.default.svc.cluster.local"
    assert ep["lineage"]["model_uri"] == "s3://models/llm-7b" and ep["lineage"]["pool_id"] == "gp-local"

    dep = cluster.get("deployment", "llm")
    assert dep["status"]["availableReplicas"] == 5
    pod = dep["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["nodeSelector"] == {"paved.dev/pool-id": "gp-local"}
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert dep["metadata"]["labels"]["paved.dev/team"] == "search"
    assert dep["metadata"]["annotations"]["paved.dev/model-uri"] == "s3://models/llm-7b"
    managed = json.loads(cluster.run("get", "deployment", "llm", "-o", "json", "--show-managed-fields").stdout)
    assert {f["manager"] for f in managed["metadata"]["managedFields"] if f["operation"] == "Apply"} == {"paved"}
    # Pods really landed on the simulated GPU nodes.
    for p in cluster.get("pods", selector=SEL)["items"]:
        node = cluster.get("node", p["spec"]["nodeName"], ns="default")
        assert node["metadata"]["labels"]["paved.dev/pool-id"] == "gp-local"
    sa = cluster.get("serviceaccount", "llm")
    assert sa["automountServiceAccountToken"] is False
    np = cluster.get("networkpolicy", "llm")
    assert np["spec"]["ingress"] == [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
    hpa = cluster.get("hpa", "llm")
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["spec"]["minReplicas"] == 5
    assert cluster.get("pdb", "llm")["spec"]["maxUnavailable"] == 1
    assert elapsed < 120, elapsed

    # Second plan is empty.
    assert tf.plan_exitcode(*kc)[0] == 0

    # Canary at 20%: 4 stable + 1 canary replicas inside min_replicas (no extra GPUs).
    tf.apply(*kc, "-var", "canary_percent=20")
    assert cluster.get("deployment", "llm")["spec"]["replicas"] == 4
    canary = cluster.get("deployment", "llm-canary")
    assert canary["spec"]["replicas"] == 1 and canary["status"]["availableReplicas"] == 1
    ep = tf.state(ADDR)
    assert "canary v2" in ep["served_revision"] and ep["ready_replicas"] == 5, ep["served_revision"]
    assert tf.plan_exitcode(*kc, "-var", "canary_percent=20")[0] == 0

    # Promote: the canary version becomes stable, the canary goes away.
    promote = (*kc, "-var", "model_version=v2", "-var", "image=registry.local/model-server:2")
    tf.apply(*promote)
    assert cluster.get("deployment", "llm-canary") is None
    dep = cluster.get("deployment", "llm")
    assert dep["spec"]["replicas"] == 5 and dep["metadata"]["annotations"]["paved.dev/model-version"] == "v2"
    assert tf.state(ADDR)["served_revision"].startswith("v2 (revision 2)")
    assert tf.plan_exitcode(*promote)[0] == 0

    # A canary that fails readiness is rolled back with a clear error; v2 keeps serving.
    code, out = tf.run("apply", "-auto-approve", *promote, "-var", "canary_percent=20",
                       "-var", "canary_version=v3", "-var", "canary_image=registry.local/fail-readiness:3", check=False)
    assert code == 1, out
    assert "Rollout failed and was rolled back" in out, out
    assert "ProgressDeadlineExceeded" in out and "llm-canary" in out, out
    assert cluster.get("deployment", "llm-canary") is None
    assert cluster.get("deployment", "llm")["status"]["availableReplicas"] == 5
    assert tf.state(ADDR)["canary"] is None
    assert tf.plan_exitcode(*promote)[0] == 0

    # A broken stable rollout (readiness fails) is rolled back to the previous revision.
    code, out = tf.run("apply", "-auto-approve", *kc, "-var", "model_version=v4",
                       "-var", "image=registry.local/fail-readiness:4", check=False)
    assert code == 1 and "rolled back" in out and "model version v2" in out, out
    dep = cluster.get("deployment", "llm")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/model-server:2"
    assert dep["status"]["availableReplicas"] == 5
    # The rollback made a new Deployment revision; a refresh-only apply records the new output.
    tf.run("apply", "-refresh-only", "-auto-approve", *promote)
    assert tf.plan_exitcode(*promote)[0] == 0

    # Drift: an out-of-band image change shows in the plan and apply restores it.
    cluster.run("set", "image", "deployment/llm", "server=registry.local/model-server:hotfix")
    code, out = tf.plan_exitcode(*promote)
    assert code == 2 and "registry.local/model-server:hotfix" in out, out
    tf.apply(*promote)
    assert tf.plan_exitcode(*promote)[0] == 0

    # Import by namespace/name gives back the same state; the next plan is empty.
    before = tf.state(ADDR)
    tf.run("state", "rm", ADDR)
    tf.run("import", *promote, ADDR, "default/llm")
    after = tf.state(ADDR)
    assert {k: v for k, v in after.items() if k != "timeouts"} == {k: v for k, v in before.items() if k != "timeouts"}
    tf.run("apply", "-refresh-only", "-auto-approve", *promote)
    assert tf.plan_exitcode(*promote)[0] == 0

    # Deleted out of band: removed from state, the plan re-creates it.
    cluster.run("delete", "deployment", "llm", "--wait=true")
    code, out = tf.plan_exitcode(*promote)
    assert code == 2 and plan_summary(out) == (1, 0, 0), out
    tf.apply(*promote)
    assert tf.plan_exitcode(*promote)[0] == 0

    # Destroy leaves no object behind (checked through the API, pods included).
    tf.run("destroy", "-auto-approve", *promote)
    assert all(v == [] for v in objects(cluster).values()), objects(cluster)


def test_failed_create_leaves_nothing(example, cluster):
    tf = example("model_endpoint")
    main = tf.dir / "main.tf"
    main.write_text(main.read_text().replace('name      = "llm"', 'name      = "broken"'))
    code, out = tf.run("apply", "-auto-approve", "-var", f"kubeconfig={cluster.kubeconfig}",
                       "-var", "image=registry.local/fail-readiness:1", check=False)
    assert code == 1 and "nothing was created" in out, out
    assert tf.run("state", "list")[1].strip() == ""
    assert cluster.get("deployments", selector="paved.dev/endpoint=broken")["items"] == []
    assert cluster.get("services", selector="paved.dev/endpoint=broken")["items"] == []
