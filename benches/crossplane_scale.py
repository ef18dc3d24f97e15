#!/usr/bin/env python3
"""Scale benchmark of the Crossplane controller: N ModelEndpoint managed resources against the
local control plane (acceptance-tests/cluster/up.sh). Measures

  * wall time from the first `kubectl apply` to all N Ready=True and Synced=True,
  * controller peak RSS (VmHWM from /proc/PID/status),
  * controller CPU seconds (utime+stime from /proc/PID/stat) per reconcile, the reconcile count
    coming from the controller's own "reconcile stats" log line,
  * wall time to delete all N (external objects included: the finalizer waits for them).

Endpoints are CPU-only (1 replica, 10m CPU, 16Mi) so N pods fit: the benchmark adds simulated
kwok nodes (cp-bench-node-*) for them and removes everything afterwards.

usage: benches/crossplane_scale.py [N] [--rate R] [--bin PATH] [--keep]
  N      number of managed resources (default 200)
  --rate the controller's --max-reconcile-rate (default 50)
  --bin  controller binary (default target/release, else target/debug terraform-provider-paved)
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PAVED_CACHE", Path.home() / ".cache" / "paved"))
KUBECONFIG = str(CACHE / "cluster" / "kubeconfig")
KUBECTL = sorted(glob.glob(str(CACHE / "k8s/*/bin/kubectl")))[-1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def kubectl(*args, input=None, check=True):
    p = subprocess.run([KUBECTL, "--kubeconfig", KUBECONFIG, *args], input=input,
                       capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args[:3])}… failed: {p.stderr}")
    return p.stdout


def apply(docs):
    kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))


def node(name):
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok",
                                    "paved.dev/simulated": "true", "paved.dev/bench": "crossplane"}},
            "status": {"capacity": {"cpu": "32", "memory": "128Gi", "pods": "250"},
                       "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "250"}}}


def endpoint(run, i, ns, pc):
    return {"apiVersion": "paved.dev/v1alpha1", "kind": "ModelEndpoint",
            "metadata": {"name": f"cp-bench-{run}-{i}", "labels": {"paved.dev/bench": run}},
            "spec": {"providerConfigRef": {"name": pc}, "forProvider": {
                "name": f"ep-{i}", "namespace": ns,
                "model": {"uri": "s3://models/tiny", "version": "v1"},
                "runtime": {"image": "registry.local/model-server:1"},
                "resources": {"cpu": "10m", "memory": "16Mi"},
                "autoscaling": {"minReplicas": 1, "maxReplicas": 1},
                "health": {"startupTimeout": "2m"},
                "rollout": {"timeout": "10m"}}}}


def proc_stats(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])  # kB
    return cpu, hwm


def last_stats(log):
    found = None
    for line in Path(log).read_text().splitlines():
        if '"reconcile stats"' in line:
            try:
                found = json.loads(line)
            except ValueError:
                pass
    return found


def counts(run):
    items = json.loads(kubectl("get", "modelendpoints", "-l", f"paved.dev/bench={run}", "-o", "json"))["items"]
    ready = 0
    for it in items:
        c = {x["type"]: x["status"] for x in it.get("status", {}).get("conditions", [])}
        ready += c.get("Ready") == "True" and c.get("Synced") == "True"
    return len(items), ready


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=200)
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--bin")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    binary = a.bin or next((p for p in [REPO / "target/release/terraform-provider-paved",
                                       REPO / "target/debug/terraform-provider-paved"] if p.exists()), None)
    if not binary or not Path(binary).exists():
        raise SystemExit("build the provider first (cargo build --release) or pass --bin")
    run = uuid.uuid4().hex[:6]
    ns, pc = f"cp-bench-{run}", f"cp-bench-{run}"
    nodes = [f"cp-bench-node-{i}" for i in range(max(1, a.n // 200 + 1))]
    kubectl("apply", "-f", str(REPO / "package" / "crds"))
    apply([node(n) for n in nodes] + [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": pc},
         "spec": {"kubernetes": {"source": "InjectedIdentity"}, "defaultTeam": "bench"}}])
    log = tempfile.NamedTemporaryFile(prefix="cp-bench-", suffix=".log", delete=False).name
    ctl = subprocess.Popen([str(binary), "crossplane", "--kubeconfig", KUBECONFIG, "--poll", "60s",
                            "--max-reconcile-rate", str(a.rate)],
                           stdout=open(log, "w"), stderr=subprocess.STDOUT)
    print(f"binary {binary}\nN={a.n} rate={a.rate} run={run} controller pid {ctl.pid} log {log}", flush=True)
    result = {}
    try:
        time.sleep(1)
        docs = [endpoint(run, i, ns, pc) for i in range(a.n)]
        t0 = time.monotonic()
        for i in range(0, len(docs), 100):
            apply(docs[i:i + 100])
        applied = time.monotonic() - t0
        last_print = 0
        while True:
            total, ready = counts(run)
            now = time.monotonic() - t0
            if now - last_print > 10:
                print(f"  t={now:6.1f}s ready {ready}/{total}", flush=True)
                last_print = now
            if total == a.n and ready == a.n:
                break
            if ctl.poll() is not None:
                raise SystemExit(f"controller exited with {ctl.returncode}; see {log}")
            if now > 3600:
                raise SystemExit(f"not all Ready after an hour ({ready}/{a.n})")
            time.sleep(2)
        t_ready = time.monotonic() - t0
        time.sleep(11)  # let the controller log its counters once more
        cpu, hwm = proc_stats(ctl.pid)
        st = last_stats(log) or {}
        reconciles = int(st.get("reconciles", 0))
        result = {
            "n": a.n, "rate": a.rate, "apply_s": round(applied, 1), "all_ready_s": round(t_ready, 1),
            "ready_per_s": round(a.n / t_ready, 1), "peak_rss_mib": round(hwm / 1024, 1),
            "cpu_s": round(cpu, 2), "reconciles": reconciles, "errors": int(st.get("errors", 0)),
            "cpu_ms_per_reconcile": round(1000 * cpu / reconciles, 2) if reconciles else None,
        }
        print(json.dumps(result), flush=True)
        if not a.keep:
            t1 = time.monotonic()
            kubectl("delete", "modelendpoints", "-l", f"paved.dev/bench={run}", "--wait=false")
            while counts(run)[0] > 0:
                if time.monotonic() - t1 > 1800:
                    raise SystemExit("deletion did not finish in 30 minutes")
                time.sleep(2)
            result["all_deleted_s"] = round(time.monotonic() - t1, 1)
            left = json.loads(kubectl("get", "deployments", "-n", ns, "-o", "json"))["items"]
            result["deployments_left"] = len(left)
            print(json.dumps(result), flush=True)
    finally:
        ctl.terminate()
        try:
            ctl.wait(timeout=10)
        except subprocess.TimeoutExpired:
            ctl.kill()
        if not a.keep:
            kubectl("delete", "modelendpoints", "-l", f"paved.dev/bench={run}", "--wait=false", check=False)
            for it in json.loads(kubectl("get", "modelendpoints", "-l", f"paved.dev/bench={run}", "-o", "json",
                                         check=False) or '{"items":[]}')["items"]:
                kubectl("patch", "modelendpoint", it["metadata"]["name"], "--type=merge",
                        "-p", '{"metadata":{"finalizers":[]}}', check=False)
            kubectl("delete", "namespace", ns, "--wait=false", check=False)
            kubectl("delete", "providerconfig", pc, "--wait=false", check=False)
            kubectl("delete", "node", *nodes, "--wait=false", check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
