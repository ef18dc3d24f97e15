"""Shared fixtures for paved's acceptance tests: the real Terraform CLI (v1.0.3) driving the
provider binary through dev_overrides, against LocalStack on 127.0.0.1:4566."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PAVED_CACHE", Path.home() / ".cache" / "paved"))
ENDPOINT = os.environ.get("PAVED_AWS_ENDPOINT", "http://127.0.0.1:4566")
PROVIDER_BIN = Path(os.environ.get("PAVED_PROVIDER_BIN", REPO / "target" / "debug" / "terraform-provider-paved"))
TERRAFORM = os.environ.get("PAVED_TERRAFORM", str(CACHE / "bin" / "terraform"))


@pytest.fixture(scope="session")
def cli_config(tmp_path_factory):
    assert PROVIDER_BIN.exists(), f"build the provider first: {PROVIDER_BIN} is missing"
    d = tmp_path_factory.mktemp("tfrc")
    rc = d / "dev.tfrc"
    rc.write_text(
        'provider_installation {\n'
        f'  dev_overrides {{ "paved/paved" = "{PROVIDER_BIN.parent}" }}\n'
        '  direct {}\n'
        '}\n'
    )
    return rc


class Terraform:
    """Runs the real terraform binary in one working directory."""

    def __init__(self, workdir: Path, cli_config: Path, extra_env=None):
        self.dir = workdir
        self.env = dict(os.environ, TF_CLI_CONFIG_FILE=str(cli_config), TF_IN_AUTOMATION="1",
                        CHECKPOINT_DISABLE="1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                        **(extra_env or {}))
        self.env.pop("TF_LOG", None)

    def run(self, *args, check=True, timeout=600):
        p = subprocess.run([TERRAFORM, *args, "-no-color"], cwd=self.dir, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        out = p.stdout + p.stderr
        if check and p.returncode != 0:
            raise AssertionError(f"terraform {' '.join(args)} failed ({p.returncode}):\n{out}")
        assert "panic" not in out.lower(), f"provider or terraform panicked:\n{out}"
        assert "plugin crashed" not in out.lower(), out
        return p.returncode, out

    def apply(self, *vars_):
        return self.run("apply", "-auto-approve", "-input=false", *vars_)

    def plan_exitcode(self, *args):
        """0 = no changes, 2 = changes (terraform plan -detailed-exitcode)."""
        code, out = self.run("plan", "-detailed-exitcode", "-input=false", *args, check=False)
        assert code in (0, 2), out
        return code, out

    def state(self, address):
        _, out = self.run("show", "-json")
        for r in json.loads(out).get("values", {}).get("root_module", {}).get("resources", []):
            if r["address"] == address:
                return r["values"]
        return None

    def output(self, name):
        _, out = self.run("output", "-json", name)
        return json.loads(out)


@pytest.fixture
def example(tmp_path, cli_config):
    """Copies examples/NAME into a fresh directory and returns a Terraform runner for it."""

    def make(name, **kw):
        dst = tmp_path / name
        shutil.copytree(REPO / "examples" / name, dst)
        return Terraform(dst, cli_config, **kw)

    return make


@pytest.fixture(scope="session")
def ec2():
    return boto3.client("ec2", endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def pool_instances(ec2, pool_id, states=("pending", "running", "stopping", "stopped")):
    resp = ec2.describe_instances(Filters=[
        {"Name": "tag:paved:pool-id", "Values": [pool_id]},
        {"Name": "instance-state-name", "Values": list(states)},
    ])
    return [i for r in resp["Reservations"] for i in r["Instances"]]


def pool_templates(ec2, pool_id):
    return ec2.describe_launch_templates(
        Filters=[{"Name": "tag:paved:pool-id", "Values": [pool_id]}])["LaunchTemplates"]


CLUSTER_DIR = CACHE / "cluster"


def _kubectl_bin():
    if os.environ.get("PAVED_KUBECTL"):
        return os.environ["PAVED_KUBECTL"]
    found = sorted(CACHE.glob("k8s/*/bin/kubectl"))
    assert found, "kubectl not found: run acceptance-tests/cluster/build.sh"
    return str(found[-1])


class Kubectl:
    """The real kubectl against the local control plane."""

    def __init__(self, kubeconfig):
        self.kubeconfig = str(kubeconfig)
        self.bin = _kubectl_bin()

    def run(self, *args, check=True):
        p = subprocess.run([self.bin, "--kubeconfig", self.kubeconfig, *args], capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {p.stderr}")
        return p

    def get(self, kind, name=None, ns="default", selector=None):
        args = ["get", kind, "-n", ns, "-o", "json"]
        if name:
            args.insert(2, name)
        if selector:
            args += ["-l", selector]
        p = self.run(*args, check=False)
        if p.returncode != 0:
            if "NotFound" in p.stderr:
                return None
            raise AssertionError(p.stderr)
        return json.loads(p.stdout)


@pytest.fixture(scope="session")
def cluster():
    kc = Path(os.environ.get("PAVED_KUBECONFIG", CLUSTER_DIR / "kubeconfig"))
    assert kc.exists(), f"no local control plane: {kc} missing (run acceptance-tests/cluster/up.sh)"
    k = Kubectl(kc)
    k.run("get", "--raw", "/readyz")
    return k
