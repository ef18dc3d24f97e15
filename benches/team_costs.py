"""Whole-process benchmark of the live cost report (`terraform-provider-paved costs`, the code
behind `data.paved_team_costs`) over N tagged EC2 instances and N labelled pods, against the
plainest way to get the same raw data in the same run: one paginated DescribeInstances with the
same filter (boto3) plus `kubectl get pods,pvc -A -l SELECTOR -o json`.

Reports, per side, the median wall time of R runs and the API calls made per run, counted at
the servers: EC2 calls through acceptance-tests/ec2_proxy.py (per Action), Kubernetes LIST
calls from the kube-apiserver's own `apiserver_request_total` metric. The figure that matters
is the ratio paved / baseline measured in the same run, not the absolute times.

Needs LocalStack (acceptance-tests/localstack.sh start) and the local control plane
(acceptance-tests/cluster/up.sh). Usage:

    python benches/team_costs.py [--instances 1000] [--pods 1000] [--runs 5] [--bin PATH]
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PAVED_CACHE", Path.home() / ".cache" / "paved"))
KUBECONFIG = CACHE / "cluster" / "kubeconfig"
LOCALSTACK = "http://127.0.0.1:4566"
SELECTOR = "app.kubernetes.io/managed-by=paved"


def kubectl_bin():
    found = sorted((CACHE / "k8s").glob("*/bin/kubectl"))
    if not found:
        sys.exit("no kubectl under ~/.cache/paved/k8s: run acceptance-tests/cluster/up.sh")
    return str(found[-1])


def kubectl(*args, input=None):
    p = subprocess.run([kubectl_bin(), "--kubeconfig", str(KUBECONFIG), *args], input=input,
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        sys.exit(f"kubectl {' '.join(args)} failed: {p.stderr}")
    return p.stdout


def list_calls():
    """LIST requests the API server has answered for pods and persistentvolumeclaims."""
    metrics = kubectl("get", "--raw", "/metrics")
    n = 0
    for line in metrics.splitlines():
        if line.startswith("apiserver_request_total{") and 'verb="LIST"' in line and \
                re.search(r'resource="(pods|persistentvolumeclaims)"', line):
            n += int(float(line.rsplit(" ", 1)[1]))
    return n


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_calls(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_proxy/counts", timeout=10) as r:
        return sum(json.load(r)["calls"].values())


def timed(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "terraform-provider-paved"))
    a = ap.parse_args()
    if not Path(a.bin).exists():
        sys.exit(f"no provider binary at {a.bin} (cargo build --release, or --bin)")
    team = f"bench-{uuid.uuid4().hex[:6]}"
    ec2 = boto3.client("ec2", endpoint_url=LOCALSTACK, region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    port = free_port()
    proxy = subprocess.Popen([sys.executable, str(REPO / "acceptance-tests" / "ec2_proxy.py"), "--port", str(port),
                              "--upstream", LOCALSTACK], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ids = []
    try:
        for _ in range(50):
            try:
                proxy_calls(port)
                break
            except OSError:
                time.sleep(0.1)
        tags = [{"Key": "paved:pool-id", "Value": f"gp-{team}"}, {"Key": "paved:pool", "Value": team},
                {"Key": "team", "Value": team}, {"Key": "project", "Value": "bench"}]
        left = a.instances
        while left > 0:
            n = min(left, 200)
            r = ec2.run_instances(ImageId="ami-04681a1dbd79675a5", InstanceType="g5.xlarge", MinCount=n, MaxCount=n,
                                  TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
            ids += [i["InstanceId"] for i in r["Instances"]]
            left -= n
        labels = {"app.kubernetes.io/managed-by": "paved", "team": team, "project": "bench",
                  "app.kubernetes.io/instance": team}
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": team, "namespace": "default"},
            "spec": {"replicas": a.pods, "selector": {"matchLabels": {"app.kubernetes.io/instance": team}},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "tolerations": [{"operator": "Exists"}],
                         "containers": [{"name": "c", "image": "registry.local/bench:1",
                                         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            got = json.loads(kubectl("get", "pods", "-n", "default", "-l", f"app.kubernetes.io/instance={team}",
                                     "-o", "json"))["items"]
            if len(got) >= a.pods:
                break
            time.sleep(2)
        else:
            sys.exit(f"only {len(got)} of {a.pods} pods were created in 5 minutes")

        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
        proxy_url = f"http://127.0.0.1:{port}"

        def paved():
            p = subprocess.run([a.bin, "costs", "--format", "json", "--team", team, "--region", "us-east-1",
                                "--aws-endpoint", proxy_url, "--kubeconfig", str(KUBECONFIG)],
                               capture_output=True, text=True, timeout=300, env=env)
            if p.returncode != 0:
                sys.exit(f"costs failed: {p.stderr}")
            return json.loads(p.stdout)

        plain_ec2 = boto3.client("ec2", endpoint_url=proxy_url, region_name="us-east-1",
                                 aws_access_key_id="test", aws_secret_access_key="test")

        def baseline():
            n = 0
            for page in plain_ec2.get_paginator("describe_instances").paginate(Filters=[
                    {"Name": "tag-key", "Values": ["paved:pool-id"]},
                    {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]):
                n += sum(len(r["Instances"]) for r in page["Reservations"])
            kubectl("get", "pods,pvc", "-A", "-l", SELECTOR, "-o", "json")
            return n

        report = paved()  # warm both sides once (LocalStack's first describe is slower)
        baseline()
        [t] = [x for x in report["teams"] if x["team"] == team]
        assert t["gpus_provisioned"] == a.instances, t
        c0, k0 = proxy_calls(port), list_calls()
        t_paved = timed(paved, a.runs)
        c1, k1 = proxy_calls(port), list_calls()
        t_base = timed(baseline, a.runs)
        c2, k2 = proxy_calls(port), list_calls()
        running = sum(1 for r in t["resources"] if r["kind"] == "pod")
        print(f"team_costs over {a.instances} instances and {a.pods} pods ({running} running), {a.runs} runs each:")
        print(f"  paved costs   median {t_paved * 1000:8.1f} ms   EC2 calls/run {(c1 - c0) / a.runs:5.1f}   "
              f"Kubernetes LIST calls/run {(k1 - k0) / a.runs:4.1f}")
        print(f"  baseline      median {t_base * 1000:8.1f} ms   EC2 calls/run {(c2 - c1) / a.runs:5.1f}   "
              f"Kubernetes LIST calls/run {(k2 - k1) / a.runs:4.1f}")
        print(f"  ratio paved / baseline: {t_paved / t_base:.2f}x wall time, "
              f"{((c1 - c0) + (k1 - k0)) / max(1, (c2 - c1) + (k2 - k1)):.2f}x API calls")
    finally:
        kubectl("delete", "deployment", team, "-n", "default", "--wait=false")
        for i in range(0, len(ids), 500):
            ec2.terminate_instances(InstanceIds=ids[i:i + 500])
        proxy.terminate()


if __name__ == "__main__":
    main()
