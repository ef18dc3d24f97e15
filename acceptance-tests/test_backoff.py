"""Bounded cloud calls (issue 10, item 6): a GpuComputePool whose every RunInstances fails with a
non-capacity error (HTTP 400 UnauthorizedOperation, injected by ec2_proxy.py in front of
LocalStack) is retried with the per-object backoff (1 s, 2 s, 4 s … 60 s), not as fast as an
attempt takes. Counted at the proxy over 60 s of the real controller against the real control
plane."""
import time
import uuid

from conftest import pool_templates
from test_crash_safety import Ec2Proxy, derived_pool_id
from test_crossplane import NS, condition, controller, get_mr, kubectl_apply, pool_mr, setup, wait_for  # noqa: F401

RUN = uuid.uuid4().hex[:6]
WINDOW = 60
# 1 + 2 + 4 + 8 + 16 + 32 s of backoff fit about 6 attempts into a minute; 10 leaves room for
# the one extra reconcile the first external-name write triggers and for slow attempts.
BOUND = 10


def test_failing_create_is_retried_with_backoff(cluster, controller, ec2):
    proxy = Ec2Proxy()
    pc = f"cp-backoff-{RUN}"
    mr, pool_name = f"cp-{RUN}-backoff", f"backoff-{RUN}"
    try:
        proxy.ctl("fail", action="RunInstances", status=400, code="UnauthorizedOperation")
        kubectl_apply(cluster, [
            {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": pc},
             "spec": {"credentials": {"source": "Secret", "secretRef": {"namespace": NS, "name": "aws", "key": "credentials"}},
                      "aws": {"region": "us-east-1", "endpoints": {"ec2": proxy.url, "sts": proxy.url}},
                      "kubernetes": {"source": "InjectedIdentity"}, "defaultTeam": "search"}}])
        controller()
        doc = pool_mr(mr, pool_name, desired=1)
        doc["spec"]["providerConfigRef"]["name"] = pc
        kubectl_apply(cluster, [doc])
        wait_for("the first RunInstances", lambda: proxy.calls("RunInstances") >= 1, timeout=120)
        start = {a: proxy.calls(a) for a in ("CreateLaunchTemplate", "RunInstances", "DeleteLaunchTemplate")}
        time.sleep(WINDOW)
        got = {a: proxy.calls(a) - n for a, n in start.items()}
        print(f"calls in {WINDOW}s after the first failure: {got}")
        assert 2 <= got["RunInstances"] <= BOUND, got
        assert got["CreateLaunchTemplate"] <= BOUND, got
        synced = condition(get_mr(cluster, "gpucomputepool", mr), "Synced")
        assert synced.get("status") == "False" and "UnauthorizedOperation" in synced.get("message", ""), synced
        # The failed attempts leave nothing behind.
        assert pool_templates(ec2, derived_pool_id("us-east-1", pool_name)) == []
    finally:
        proxy.ctl("clear")
        cluster.run("delete", "gpucomputepool", mr, "--wait=false", check=False)
        try:
            wait_for(f"{mr} deleted", lambda: cluster.get("gpucomputepool", mr) is None, timeout=60)
        finally:
            cluster.run("patch", "gpucomputepool", mr, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}', check=False)
            cluster.run("delete", "providerconfig", pc, "--wait=false", check=False)
            proxy.stop()

