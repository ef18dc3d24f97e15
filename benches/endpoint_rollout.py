#!/usr/bin/env python3
"""Whole-process benchmark: how long `terraform apply` of a paved_model_endpoint takes to return
after the Deployment becomes Available (the cost of the provider's watch-based wait), measured
against the local control plane. Baseline in the same run: `kubectl rollout status`, a
watch-based waiter started together with the apply.

usage: benches/endpoint_rollout.py [ROUNDS]   (needs acceptance-tests/cluster/up.sh and a built
provider; uses examples/model_endpoint and alternates model versions each round)
"""
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PAVED_CACHE", Path.home() / ".cache" / "paved"))
KUBECONFIG = str(CACHE / "cluster" / "kubeconfig")
KUBECTL = sorted(glob.glob(str(CACHE / "k8s/*/bin/kubectl")))[-1]
TERRAFORM = str(CACHE / "bin" / "terraform")
PROVIDER_DIR = os.environ.get("PAVED_PROVIDER_DIR", str(REPO / "target" / "debug"))


def available(d):
    st, spec, meta = d.get("status", {}), d.get("spec", {}), d.get("metadata", {})
    want = spec.get("replicas", 1)
    return (st.get("observedGeneration", 0) >= meta.get("generation", 0)
            and st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want
            and st.get("availableReplicas", 0) == want)


def watch_until_available(min_generation, out):
    """Streams the Deployment with kubectl's watch; records when the new generation is Available."""
    p = subprocess.Popen([KUBECTL, "--kubeconfig", KUBECONFIG, "get", "deployment", "llm", "-w", "-o", "json"],
                         stdout=subprocess.PIPE, text=True)
    dec, buf = json.JSONDecoder(), ""
    try:
        for line in p.stdout:
            buf += line
            while buf.strip():
                try:
                    obj, end = dec.raw_decode(buf.lstrip())
                except ValueError:
                    break
                buf = buf.lstrip()[end:]
                if obj["metadata"].get("generation", 0) >= min_generation and available(obj):
                    out["available"] = time.monotonic()
                    return
    finally:
        p.kill()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = Path(tempfile.mkdtemp())
    shutil.copytree(REPO / "examples" / "model_endpoint", work / "ex")
    rc = work / "dev.tfrc"
    rc.write_text(f'provider_installation {{\n dev_overrides {{ "paved/paved" = "{PROVIDER_DIR}" }}\n direct {{}}\n}}\n')
    env = dict(os.environ, TF_CLI_CONFIG_FILE=str(rc), CHECKPOINT_DISABLE="1")

    def apply(version):
        return subprocess.run([TERRAFORM, "apply", "-auto-approve", "-no-color", "-var", f"kubeconfig={KUBECONFIG}",
                               "-var", f"model_version={version}"], cwd=work / "ex", env=env, capture_output=True, text=True)

    assert apply("v0").returncode == 0
    paved_lag, kubectl_lag, totals = [], [], []
    for i in range(rounds):
        gen = json.loads(subprocess.check_output([KUBECTL, "--kubeconfig", KUBECONFIG, "get", "deployment", "llm", "-o", "json"]))["metadata"]["generation"]
        seen = {}
        w = threading.Thread(target=watch_until_available, args=(gen + 1, seen))
        w.start()
        start = time.monotonic()
        kubectl_done = {}

        def rollout_status():
            # Start the baseline waiter once the apply has submitted the new spec.
            while int(subprocess.check_output([KUBECTL, "--kubeconfig", KUBECONFIG, "get", "deployment", "llm",
                                               "-o", "jsonpath={.metadata.generation}"]) or 0) <= gen:
                time.sleep(0.05)
            subprocess.run([KUBECTL, "--kubeconfig", KUBECONFIG, "rollout", "status", "deployment/llm", "--timeout=120s"],
                           capture_output=True)
            kubectl_done["t"] = time.monotonic()

        k = threading.Thread(target=rollout_status)
        k.start()
        r = apply(f"v{i + 1}")
        done = time.monotonic()
        w.join(timeout=60)
        k.join(timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        paved_lag.append((done - seen["available"]) * 1000)
        kubectl_lag.append((kubectl_done["t"] - seen["available"]) * 1000)
        totals.append((done - start) * 1000)
    subprocess.run([TERRAFORM, "destroy", "-auto-approve", "-no-color", "-var", f"kubeconfig={KUBECONFIG}"],
                   cwd=work / "ex", env=env, capture_output=True)
    med = statistics.median
    print(f"rounds={rounds}")
    print(f"terraform apply returns after Available: median {med(paved_lag):.0f} ms (min {min(paved_lag):.0f}, max {max(paved_lag):.0f})")
    print(f"kubectl rollout status returns after Available (baseline): median {med(kubectl_lag):.0f} ms")
    print(f"whole apply (plan+rollout of 5 GPU replicas): median {med(totals):.0f} ms")


if __name__ == "__main__":
    main()
