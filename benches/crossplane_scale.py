#!/usr/bin/env python3
"""Scale benchmark of the Crossplane controller: N ModelEndpoint managed resources against the
local control plane (acceptance-tests/cluster/up.sh). Measures

  * wall time from the first `kubectl apply` to all N Ready=True and Synced=True,
  * controller peak RSS (VmHWM from /proc/PID/status),
  * controller CPU seconds (utime+stime from /proc/PID/stat) per reconcile, the reconcile count
    coming from the controller's own "reconcile stats" log line,
  * wall time to delete all N (external objects included: the finalizer waits for them).

Baseline mode (same sitting): the controller first reconciles ONE template ModelEndpoint; the
Deployment, Service, ServiceAccount, NetworkPolicy, PodDisruptionBudget and HPA it produced are
dumped (status, uid, resourceVersion, managedFields, creationTimestamp, ownerReferences, clusterIP
stripped), templated by name for N copies and server-side applied with kubectl in batches of 100,
with no controller running; the wall time runs to all N Deployments Available. The controller's
overhead ratio is controller all-Ready wall / baseline all-Available wall.

Endpoints are CPU-only (1 replica, 10m CPU, 16Mi) so N pods fit: the benchmark adds simulated
kwok nodes (cp-bench-node-*) for them and removes everything afterwards. Cleanup keeps the
controller running until every MR is gone (--cleanup-timeout), only then strips the finalizers of
what is left, deletes the namespaces, the ProviderConfig and the nodes and waits for them to go.
SIGTERM/SIGHUP/SIGINT run the same cleanup; the controller runs in its own session so a signal to
the benchmark's process group does not take it down before its MRs are deleted.

usage: benches/crossplane_scale.py [N] [--mode both|controller|baseline] [--rate R] [--bin PATH]
                                   [--cleanup-timeout S] [--keep]
  N      number of managed resources (default 200)
  --mode both (default): template, controller run, baseline run, in one sitting
  --rate the controller's --max-reconcile-rate (default 50)
  --bin  controller binary (default target-cp/release, target/release, else target/debug)
"""
import argparse
import copy
import glob
import json
import os
import signal
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


class Interrupted(Exception):
    pass


def kubectl(*args, input=None, check=True, timeout=600):
    try:
        p = subprocess.run([KUBECTL, "--kubeconfig", KUBECONFIG, *args], input=input,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        if check:
            raise SystemExit(f"kubectl {' '.join(args[:3])}… timed out")
        return ""
    if check and p.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args[:3])}… failed: {p.stderr}")
    return p.stdout


def items(*args):
    """`kubectl get … -o json` items; [] on error (cleanup must not die on a transient failure)."""
    try:
        return json.loads(kubectl("get", *args, "-o", "json", check=False) or "{}").get("items", [])
    except ValueError:
        return []


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
    ready = 0
    its = items("modelendpoints", "-l", f"paved.dev/bench={run}")
    for it in its:
        c = {x["type"]: x["status"] for x in it.get("status", {}).get("conditions", [])}
        ready += c.get("Ready") == "True" and c.get("Synced") == "True"
    return len(its), ready


# what the controller creates for one ModelEndpoint (the baseline applies exactly these)
KINDS = ["deployments", "services", "serviceaccounts", "networkpolicies", "poddisruptionbudgets",
         "horizontalpodautoscalers"]
DROP_META = ("uid", "resourceVersion", "managedFields", "creationTimestamp", "generation", "ownerReferences",
             "selfLink")
DROP_ANN = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")


def strip(obj):
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    md = obj["metadata"]
    for k in DROP_META:
        md.pop(k, None)
    ann = md.get("annotations") or {}
    for k in DROP_ANN:
        ann.pop(k, None)
    if not ann:
        md.pop("annotations", None)
    if obj["kind"] == "Service":
        for k in ("clusterIP", "clusterIPs"):
            obj["spec"].pop(k, None)
    if obj["kind"] == "ServiceAccount":
        obj.pop("secrets", None)
    tmd = obj.get("spec", {}).get("template", {}).get("metadata")
    if tmd is not None:
        tmd.pop("creationTimestamp", None)
    return obj


class Controller:
    def __init__(self, binary, rate, tag):
        self.binary, self.rate = binary, rate
        self.log = tempfile.NamedTemporaryFile(prefix=f"cp-bench-{tag}-", suffix=".log", delete=False).name
        self.p = None

    def start(self):
        # own session: a signal to the benchmark's process group must not kill the controller
        # before the cleanup has had it remove its finalizers
        self.p = subprocess.Popen([str(self.binary), "crossplane", "--kubeconfig", KUBECONFIG, "--poll", "60s",
                                   "--max-reconcile-rate", str(self.rate)],
                                  stdout=open(self.log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self):
        if self.p is None:
            return
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.p = None


def wait_until(what, done, timeout, every=2, t0=None, progress=None):
    t0 = time.monotonic() if t0 is None else t0
    last = 0
    while True:
        ok = done()
        now = time.monotonic() - t0
        if progress and (now - last > 10 or ok):
            print(f"  t={now:6.1f}s {progress()}", flush=True)
            last = now
        if ok:
            return now
        if now > timeout:
            raise SystemExit(f"{what}: not done after {timeout}s")
        time.sleep(every)


def wait_mrs_ready(run, n, ctl, t0, timeout=3600):
    state = {"c": (0, 0)}

    def done():
        if not ctl.alive():
            raise SystemExit(f"controller exited with {ctl.p.returncode}; see {ctl.log}")
        state["c"] = counts(run)
        return state["c"] == (n, n)
    return wait_until("MRs Ready", done, timeout, t0=t0,
                      progress=lambda: f"ready {state['c'][1]}/{state['c'][0]}")


def available(ns):
    """Deployments Available, by the controller's own rollout test (workload::deployment_progress):
    spec observed, all replicas updated, no old ones left, all available."""
    n = 0
    for d in items("deployments", "-n", ns):
        st, want = d.get("status", {}), d["spec"].get("replicas", 1)
        c = {x["type"]: x["status"] for x in st.get("conditions", [])}
        n += (c.get("Available") == "True" and st.get("observedGeneration", 0) >= d["metadata"]["generation"]
              and st.get("updatedReplicas", 0) >= want and st.get("replicas", 0) <= st.get("updatedReplicas", 0)
              and st.get("availableReplicas", 0) >= want)
    return n


def delete_mrs(run, ctl, binary, rate, timeout):
    """Delete the run's MRs with the controller running (restarted if it died) so its finalizer
    removes the external objects; strip the finalizers of whatever is left after `timeout`."""
    if not items("modelendpoints", "-l", f"paved.dev/bench={run}"):
        return 0.0
    t1 = time.monotonic()
    kubectl("delete", "modelendpoints", "-l", f"paved.dev/bench={run}", "--wait=false", check=False)
    while True:
        left = items("modelendpoints", "-l", f"paved.dev/bench={run}")
        if not left:
            return time.monotonic() - t1
        if time.monotonic() - t1 > timeout:
            print(f"  {len(left)} MRs still there after {timeout}s: stripping finalizers", flush=True)
            for it in left:
                kubectl("patch", "modelendpoint", it["metadata"]["name"], "--type=merge",
                        "-p", '{"metadata":{"finalizers":[]}}', check=False)
            return None
        if binary and not ctl.alive():
            print("  controller not running during cleanup: restarting it", flush=True)
            ctl.start()
        time.sleep(2)


def cleanup(run, ctl, binary, rate, timeout, namespaces, pcs, nodes):
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)  # the cleanup always runs to the end
    print("cleanup…", flush=True)
    deleted = delete_mrs(run, ctl, binary, rate, timeout)
    ctl.stop()
    for ns in namespaces:
        kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
    for pc in pcs:
        kubectl("delete", "providerconfig", pc, "--wait=false", "--ignore-not-found", check=False)
    t = time.monotonic()
    names = set(namespaces)
    while {i["metadata"]["name"] for i in items("namespaces")} & names and time.monotonic() - t < 600:
        time.sleep(2)
    for pc in pcs:  # a ProviderConfig finalizer nobody will remove any more
        if kubectl("get", "providerconfig", pc, "--ignore-not-found", "-o", "name", check=False).strip():
            kubectl("patch", "providerconfig", pc, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}',
                    check=False)
    if nodes:
        kubectl("delete", "node", *nodes, "--wait=false", "--ignore-not-found", check=False)
        t = time.monotonic()
        while {i["metadata"]["name"] for i in items("nodes")} & set(nodes) and time.monotonic() - t < 300:
            time.sleep(2)
    left = {"modelendpoints": [i["metadata"]["name"] for i in items("modelendpoints", "-l", f"paved.dev/bench={run}")],
            "namespaces": sorted({i["metadata"]["name"] for i in items("namespaces")} & names),
            "nodes": sorted({i["metadata"]["name"] for i in items("nodes")} & set(nodes))}
    print(f"cleanup done: {json.dumps(left)}", flush=True)
    return deleted


def sweep():
    """Remove what an earlier, killed run left behind (everything labelled paved.dev/bench)."""
    mrs = items("modelendpoints", "-l", "paved.dev/bench")
    runs = sorted({i["metadata"]["labels"]["paved.dev/bench"] for i in mrs})
    nss = [i["metadata"]["name"] for i in items("namespaces", "-l", "paved.dev/bench")]
    nss += [i["metadata"]["name"] for i in items("namespaces")
            if i["metadata"]["name"].startswith(("cp-bench-", "cpb-")) and i["metadata"]["name"] not in nss]
    pcs = [i["metadata"]["name"] for i in items("providerconfigs") if i["metadata"]["name"].startswith("cp-bench-")]
    nodes = [i["metadata"]["name"] for i in items("nodes", "-l", "paved.dev/bench=crossplane")]
    print(f"sweep: runs {runs} namespaces {nss} providerconfigs {pcs} nodes {nodes}", flush=True)
    return runs, nss, pcs, nodes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=200)
    ap.add_argument("--mode", choices=["both", "controller", "baseline"], default="both")
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--bin")
    ap.add_argument("--cleanup-timeout", type=int, default=1800,
                    help="seconds to wait, controller running, for the MRs to go before stripping finalizers")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--sweep", action="store_true", help="only remove leftovers of earlier runs, then exit")
    a = ap.parse_args()
    binary = a.bin or next((p for p in [REPO / "target-cp/release/terraform-provider-paved",
                                       REPO / "target/release/terraform-provider-paved",
                                       REPO / "target/debug/terraform-provider-paved"] if p.exists()), None)
    if not binary or not Path(binary).exists():
        raise SystemExit("build the provider first (cargo build --release) or pass --bin")

    def interrupted(sig, _frame):
        raise Interrupted(signal.Signals(sig).name)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)

    if a.sweep:
        runs, nss, pcs, nodes = sweep()
        ctl = Controller(binary, a.rate, "sweep")
        for r in runs or [None]:
            if r:
                cleanup(r, ctl, binary, a.rate, a.cleanup_timeout, nss, pcs, nodes)
        if not runs:
            cleanup("none", ctl, None, a.rate, a.cleanup_timeout, nss, pcs, nodes)
        return 0

    run = uuid.uuid4().hex[:6]
    ns, pc = f"cp-bench-{run}", f"cp-bench-{run}"      # controller run
    tpl_ns, base_ns = f"cpb-tpl-{run}", f"cpb-base-{run}"  # template MR, baseline copies
    tpl_mr = f"cp-bench-{run}-tpl"
    namespaces = [ns, tpl_ns, base_ns]
    nodes = [f"cp-bench-node-{i}" for i in range(max(1, a.n // 200 + 1))]
    ctl = Controller(binary, a.rate, "ctl")
    print(f"binary {binary}\nN={a.n} mode={a.mode} rate={a.rate} run={run}", flush=True)
    results = {}
    try:
        kubectl("apply", "-f", str(REPO / "package" / "crds"))
        apply([node(n) for n in nodes] + [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": x, "labels": {"paved.dev/bench": run}}}
            for x in namespaces] + [
            {"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": pc},
             "spec": {"kubernetes": {"source": "InjectedIdentity"}, "defaultTeam": "bench"}}])

        # 1. template: what the controller creates for one ModelEndpoint
        tpl = []
        if a.mode in ("both", "baseline"):
            tctl = Controller(binary, a.rate, "tpl").start()
            try:
                mr = endpoint(run, "tpl", tpl_ns, pc)
                apply([mr])
                wait_mrs_ready(run, 1, tctl, time.monotonic(), timeout=300)
                for kind in KINDS:
                    for o in items(kind, "-n", tpl_ns):
                        if kind == "serviceaccounts" and o["metadata"]["name"] == "default":
                            continue
                        tpl.append(strip(o))
                other = [f"{k}/{o['metadata']['name']}" for k in ("configmaps", "secrets")
                         for o in items(k, "-n", tpl_ns) if o["metadata"]["name"] != "kube-root-ca.crt"]
                tpl_file = Path(tempfile.gettempdir()) / f"cp-bench-{run}-template.json"
                tpl_file.write_text(json.dumps(tpl, indent=1))
                print(f"template: {len(tpl)} objects {[o['kind'] + '/' + o['metadata']['name'] for o in tpl]}"
                      f" (not copied: {other}) -> {tpl_file}", flush=True)
                d = delete_mrs(run, tctl, binary, a.rate, 300)
                print(f"template MR deleted in {d and round(d, 1)}s", flush=True)
            finally:
                tctl.stop()

        # 2. controller run
        if a.mode in ("both", "controller"):
            ctl.start()
            print(f"controller pid {ctl.p.pid} log {ctl.log}", flush=True)
            time.sleep(1)
            docs = [endpoint(run, i, ns, pc) for i in range(a.n)]
            t0 = time.monotonic()
            for i in range(0, len(docs), 100):
                apply(docs[i:i + 100])
            applied = time.monotonic() - t0
            t_ready = wait_mrs_ready(run, a.n, ctl, t0)
            time.sleep(11)  # let the controller log its counters once more
            cpu, hwm = proc_stats(ctl.p.pid)
            st = last_stats(ctl.log) or {}
            reconciles = int(st.get("reconciles", 0))
            r = results["controller"] = {
                "n": a.n, "rate": a.rate, "apply_s": round(applied, 1), "all_ready_s": round(t_ready, 1),
                "ready_per_s": round(a.n / t_ready, 1), "peak_rss_mib": round(hwm / 1024, 1),
                "cpu_s": round(cpu, 2), "reconciles": reconciles, "errors": int(st.get("errors", 0)),
                "cpu_ms_per_reconcile": round(1000 * cpu / reconciles, 2) if reconciles else None,
            }
            print("controller " + json.dumps(r), flush=True)
            if not a.keep:
                d = delete_mrs(run, ctl, binary, a.rate, a.cleanup_timeout)
                r["all_deleted_s"] = d and round(d, 1)
                r["deployments_left"] = len(items("deployments", "-n", ns))
                ctl.stop()
                # let the pods of the controller run go before the baseline starts
                wait_until("controller-run pods gone", lambda: not items("pods", "-n", ns), 600)
                print("controller " + json.dumps(r), flush=True)
            ctl.stop()

        # 3. baseline: the same objects, server-side applied by kubectl, no controller
        if a.mode in ("both", "baseline"):
            docs = []
            for i in range(a.n):
                s = json.dumps(tpl).replace(tpl_ns, base_ns).replace(tpl_mr, f"cp-bench-{run}-{i}") \
                    .replace("ep-tpl", f"ep-{i}")
                docs.append(json.loads(s))
            t0 = time.monotonic()
            for i in range(0, len(docs), 100):
                batch = [o for objs in docs[i:i + 100] for o in objs]
                kubectl("apply", "--server-side", "--field-manager=cp-bench-baseline", "-f", "-",
                        input="\n---\n".join(json.dumps(o) for o in batch))
            applied = time.monotonic() - t0
            state = {"a": 0}

            def done():
                state["a"] = available(base_ns)
                return state["a"] == a.n
            t_avail = wait_until("baseline Deployments Available", done, 3600, t0=t0,
                                 progress=lambda: f"available {state['a']}/{a.n}")
            r = results["baseline"] = {"n": a.n, "objects": a.n * len(tpl), "apply_s": round(applied, 1),
                                       "all_available_s": round(t_avail, 1),
                                       "available_per_s": round(a.n / t_avail, 1)}
            print("baseline " + json.dumps(r), flush=True)
        if "controller" in results and "baseline" in results:
            results["overhead_ratio"] = round(results["controller"]["all_ready_s"] /
                                              results["baseline"]["all_available_s"], 2)
        print("RESULT " + json.dumps(results), flush=True)
    except Interrupted as e:
        print(f"interrupted by {e}", flush=True)
        return 130
    finally:
        if a.keep:
            ctl.stop()
        else:
            cleanup(run, ctl, binary, a.rate, a.cleanup_timeout, namespaces, [pc], nodes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
