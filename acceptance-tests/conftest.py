"""Shared fixtures for paved's acceptance tests: real Terraform/OpenTofu CLIs driving the
provider binary through dev_overrides, against LocalStack on 127.0.0.1:4566 and the local
control plane.

CLI matrix
==========
Every test that drives a CLI runs once per CLI of the matrix ("leg"); its test ID names the CLI,
e.g. ``test_lifecycle[tofu-1.12.6]``:

  leg        CLI                                   found at
  primary    Terraform 1.0.3 (the oldest we support) $PAVED_TERRAFORM, else $PAVED_CACHE/bin/terraform (setup.sh)
  current    the newest Terraform >= 1.6 on PATH     $PAVED_TERRAFORM_CURRENT, else searched on PATH
  tofu       OpenTofu 1.12.6                         $PAVED_TOFU, else $PAVED_CACHE/tofu/*/bin/tofu (tofu/build.sh)

The primary leg runs the whole suite (tests that run no CLI, such as the Crossplane and handshake
tests, run once, in that leg). By default a CLI-driven test runs on all three legs: lifecycle,
import, drift, destroy and bad-config tests must hold on every CLI. pytest runs the legs one after
the other (primary first) and prints pass/fail counts and wall time per leg at the end.

A leg whose CLI is missing is skipped with a message saying why (the first line of the session
header lists the matrix); with CI=true a missing CLI is an error instead. PAVED_CLIS=primary,tofu
(any of primary, current, tofu) limits the run to those legs.

Fixtures
--------
``cli``            the test's CLI (parametrizes the test over the legs): ``name`` ("tofu-1.12.6"),
                   ``kind`` ("terraform" or "tofu"), ``version`` (tuple, e.g. (1, 12, 6)),
                   ``path``, ``leg`` ("primary"/"current"/"tofu"), ``config`` (its CLI config file,
                   with dev_overrides { "paved/paved" = <dir of the provider binary> }),
                   ``supports_write_only`` (>= 1.11 for both), ``supports_functions`` (Terraform
                   >= 1.8, OpenTofu >= 1.7), ``supports_ephemeral`` (Terraform >= 1.10, OpenTofu
                   >= 1.11), ``supports(feature)``, ``require(feature)`` (skips the test on a CLI
                   without it), ``runner(dir, extra_env=None)`` (a ``Terraform`` runner for dir).
``example``        ``example(name, **kw)`` copies examples/NAME into a fresh directory and returns a
                   ``Terraform`` runner for it, using the test's CLI.
``cli_config``     the test's CLI config file (``cli.config``).

``Terraform`` (the runner; the class name is historical, it runs whichever CLI it was given):
``run(*args, check=True)`` -> (exit code, stdout + stderr), ``apply(*args)``,
``plan_exitcode(*args)`` (0 = no changes, 2 = changes), ``state(address)``, ``output(name)``,
``json(*args)`` (runs a command and parses its stdout as JSON).

Markers
-------
``@pytest.mark.cli_features("functions", ...)``  run only on CLIs with all those features
                   ("write_only", "functions", "ephemeral"); the other legs are not generated.
``@pytest.mark.primary_cli``  run only on the primary leg (for CLI-driven tests that are not
                   about CLI compatibility; use sparingly).

Output differs between CLIs (plan summaries, diagnostics, warnings): assert with
``plan_summary(out)`` and regexes rather than exact whitespace.
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PAVED_CACHE", Path.home() / ".cache" / "paved"))
ENDPOINT = os.environ.get("PAVED_AWS_ENDPOINT", "http://127.0.0.1:4566")
PROVIDER_BIN = Path(os.environ.get("PAVED_PROVIDER_BIN", REPO / "target" / "debug" / "terraform-provider-paved"))
# Terraform 1.0.3, the primary CLI (kept under this name for scripts that set it).
TERRAFORM = os.environ.get("PAVED_TERRAFORM", str(CACHE / "bin" / "terraform"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Features a CLI may lack: name -> minimum version per kind.
FEATURES = {
    "write_only": {"terraform": (1, 11), "tofu": (1, 11)},
    "functions": {"terraform": (1, 8), "tofu": (1, 7)},
    "ephemeral": {"terraform": (1, 10), "tofu": (1, 11)},
}
LEGS = ("primary", "current", "tofu")
CURRENT_MIN = (1, 6)
_CONFIG = []  # the pytest config, for hooks that are not given it


def _tofu_pinned():
    """The OpenTofu version tofu/build.sh builds (from tofu/gomod/go.mod), without the v."""
    try:
        m = re.search(r"^require github\.com/opentofu/opentofu v(\S+)", (Path(__file__).parent / "tofu" / "gomod" / "go.mod").read_text(), re.M)
    except OSError:
        return None
    return m.group(1) if m else None


TOFU_PINNED = _tofu_pinned()


def cli_version(path):
    """(kind, version tuple) of a terraform or tofu binary, or None if it does not run."""
    try:
        p = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, CHECKPOINT_DISABLE="1", TF_CLI_CONFIG_FILE=os.devnull))
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^(Terraform|OpenTofu) v(\d+)\.(\d+)\.(\d+)", p.stdout, re.M)
    if p.returncode != 0 or not m:
        return None
    return ("tofu" if m.group(1) == "OpenTofu" else "terraform"), tuple(int(g) for g in m.groups()[1:])


class Cli:
    """One CLI of the matrix. ``path`` is None when it is missing (``missing`` says why)."""

    def __init__(self, leg, kind, path=None, version=None, missing=None):
        self.leg, self.kind, self.path, self.version, self.missing = leg, kind, path, version, missing
        self.config = None  # written by the session fixture once the provider binary is known

    @property
    def name(self):
        if self.version is None:  # missing: the pinned version when there is one
            return {"primary": "terraform-1.0.3", "tofu": f"tofu-{TOFU_PINNED or 'missing'}"}.get(self.leg, f"terraform-{self.leg}")
        return f"{self.kind}-{'.'.join(map(str, self.version))}"

    @property
    def primary(self):
        return self.leg == "primary"

    def supports(self, feature):
        if feature not in FEATURES:
            raise ValueError(f"unknown CLI feature {feature!r} (known: {', '.join(FEATURES)})")
        return self.version is not None and self.version >= FEATURES[feature][self.kind]

    supports_write_only = property(lambda self: self.supports("write_only"))
    supports_functions = property(lambda self: self.supports("functions"))
    supports_ephemeral = property(lambda self: self.supports("ephemeral"))

    def require(self, feature):
        if not self.supports(feature):
            pytest.skip(f"{self.name} has no {feature.replace('_', '-')} support")

    def runner(self, workdir, extra_env=None):
        return Terraform(Path(workdir), self, extra_env=extra_env)

    def __repr__(self):
        return f"Cli({self.name}, {self.path or self.missing})"


def _newest_terraform_on_path():
    """The newest `terraform` >= 1.6 among the PATH entries, or None."""
    best, seen = None, set()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = Path(d or ".") / "terraform"
        if not (p.is_file() and os.access(p, os.X_OK)):
            continue
        real = p.resolve()
        if real in seen:
            continue
        seen.add(real)
        v = cli_version(p)
        if v and v[0] == "terraform" and v[1] >= CURRENT_MIN and (best is None or v[1] > best[1]):
            best = (str(p), v[1])
    return best


def discover_clis():
    clis = []
    v = cli_version(TERRAFORM)
    clis.append(Cli("primary", "terraform", TERRAFORM, v[1]) if v and v[0] == "terraform" else
                Cli("primary", "terraform", missing=f"{TERRAFORM} does not run (run acceptance-tests/setup.sh)"))

    if os.environ.get("PAVED_TERRAFORM_CURRENT"):
        p = os.environ["PAVED_TERRAFORM_CURRENT"]
        v = cli_version(p)
        if v and v[0] == "terraform" and v[1] >= CURRENT_MIN:
            clis.append(Cli("current", "terraform", p, v[1]))
        else:
            clis.append(Cli("current", "terraform", missing=f"PAVED_TERRAFORM_CURRENT={p} is not a Terraform >= 1.6"))
    else:
        found = _newest_terraform_on_path()
        clis.append(Cli("current", "terraform", *found) if found else
                    Cli("current", "terraform", missing="no Terraform >= 1.6 on PATH (set PAVED_TERRAFORM_CURRENT)"))

    tofu = os.environ.get("PAVED_TOFU")
    if not tofu:
        pinned = CACHE / "tofu" / f"v{TOFU_PINNED}" / "bin" / "tofu"
        tofu = str(pinned) if pinned.exists() else None
    v = cli_version(tofu) if tofu else None
    clis.append(Cli("tofu", "tofu", tofu, v[1]) if v and v[0] == "tofu" else
                Cli("tofu", "tofu", missing=(f"{tofu} is not an OpenTofu binary" if tofu else
                                             "no OpenTofu: run acceptance-tests/tofu/build.sh or set PAVED_TOFU")))

    wanted = os.environ.get("PAVED_CLIS")
    if wanted:
        keys = [k.strip() for k in wanted.split(",") if k.strip()]
        bad = [k for k in keys if k not in LEGS]
        if bad:
            raise pytest.UsageError(f"PAVED_CLIS: unknown leg(s) {bad}; use {', '.join(LEGS)}")
        clis = [c for c in clis if c.leg in keys]
    return clis


def pytest_configure(config):
    config.addinivalue_line("markers", "cli_features(*features): run only on CLIs that have all these features "
                                       f"({', '.join(FEATURES)})")
    config.addinivalue_line("markers", "primary_cli: run only on the primary CLI (Terraform 1.0.3)")
    config._paved_clis = discover_clis()
    config._paved_legs = {}  # nodeid -> leg
    config._paved_stats = {}  # leg -> {"outcomes": {...}, "start": t, "end": t}
    _CONFIG[:] = [config]


def pytest_report_header(config):
    lines = ["CLI matrix:"]
    for c in config._paved_clis:
        state = c.path if c.path else f"MISSING ({c.missing}){' -> error (CI=true)' if IN_CI else ' -> leg skipped'}"
        lines.append(f"  {c.leg:8} {c.name:18} {state}")
    return lines


def _legs_for(definition, clis):
    if definition.get_closest_marker("primary_cli"):
        clis = [c for c in clis if c.primary]
    for m in definition.iter_markers("cli_features"):
        for f in m.args:
            if f not in FEATURES:
                raise pytest.UsageError(f"{definition.nodeid}: unknown CLI feature {f!r}")
        # A missing CLI's features are unknown: keep it, its tests skip (or fail in CI) anyway.
        clis = [c for c in clis if c.path is None or all(c.supports(f) for f in m.args)]
    return clis


def pytest_generate_tests(metafunc):
    if "cli" not in metafunc.fixturenames:
        return
    clis = _legs_for(metafunc.definition, metafunc.config._paved_clis)
    metafunc.parametrize("cli", clis, ids=[c.name for c in clis], indirect=True)


def pytest_collection_modifyitems(session, config, items):
    # Legs run one after the other, primary (with every test that runs no CLI) first; the order
    # inside a leg is the files' order, so module-scoped fixtures stay together.
    order = {leg: i for i, leg in enumerate(LEGS)}
    for item in items:
        cs = getattr(item, "callspec", None)
        c = cs.params.get("cli") if cs else None
        config._paved_legs[item.nodeid] = c.leg if c else "primary"
    # Tests that wait for a build run.sh starts in the background (the static release binary)
    # go last in their leg, so that build has the whole leg to finish in.
    late = {"test_release.py"}
    items.sort(key=lambda item: (order[config._paved_legs[item.nodeid]],
                                 Path(str(item.fspath)).name in late))


def _leg_stats(nodeid):
    config = _CONFIG[0]
    leg = config._paved_legs.get(nodeid)
    if leg is None:
        return None
    return config._paved_stats.setdefault(leg, {"outcomes": {}, "start": time.time(), "end": time.time()})


def pytest_runtest_logstart(nodeid, location):
    _leg_stats(nodeid)


def pytest_runtest_logreport(report):
    s = _leg_stats(report.nodeid)
    if s is None:
        return
    s["end"] = time.time()
    key = None
    if report.when == "call":
        key = report.outcome
    elif report.outcome == "failed":  # setup or teardown
        key = "error"
    elif report.when == "setup" and report.outcome == "skipped":
        key = "skipped"
    if key:
        s["outcomes"][key] = s["outcomes"].get(key, 0) + 1


def pytest_terminal_summary(terminalreporter, config):
    if not config._paved_stats:
        return
    names = {c.leg: c.name for c in config._paved_clis}
    terminalreporter.section("CLI legs")
    for leg in LEGS:
        s = config._paved_stats.get(leg)
        if not s:
            continue
        counts = ", ".join(f"{n} {k}" for k, n in sorted(s["outcomes"].items())) or "nothing ran"
        extra = " (and every test that runs no CLI)" if leg == "primary" else ""
        terminalreporter.write_line(f"{leg:8} {names.get(leg, leg)}{extra}: {counts} in {s['end'] - s['start']:.0f}s")


def _write_cli_config(path, with_overrides=True):
    path.write_text(
        'provider_installation {\n'
        + (f'  dev_overrides {{ "paved/paved" = "{PROVIDER_BIN.parent}" }}\n' if with_overrides else '')
        + '  direct {}\n'
        '}\n'
    )
    return path


@pytest.fixture(scope="session")
def _cli_configs(tmp_path_factory, pytestconfig):
    """One CLI config file per CLI: dev_overrides point paved/paved at the provider binary's
    directory (OpenTofu reads it as registry.opentofu.org/paved/paved, Terraform as
    registry.terraform.io/paved/paved)."""
    assert PROVIDER_BIN.exists(), f"build the provider first: {PROVIDER_BIN} is missing"
    d = tmp_path_factory.mktemp("clirc")
    for c in pytestconfig._paved_clis:
        if c.config is None:
            c.config = _write_cli_config(d / f"{c.name}.tfrc")
    return d


@pytest.fixture
def cli(request, _cli_configs):
    """The CLI this test runs on (see the module docstring)."""
    c = request.param
    if c.path is None:
        msg = f"{c.leg} CLI leg: {c.missing}"
        if IN_CI:
            pytest.fail(f"{msg} (CI=true: every leg of the CLI matrix must run)", pytrace=False)
        pytest.skip(msg)
    return c


@pytest.fixture
def cli_config(cli):
    return cli.config


def plan_summary(out):
    """(add, change, destroy) from a plan's "Plan: ..." line, (0, 0, 0) for "No changes".

    Terraform 1.0 and 1.11 and OpenTofu word the no-change message differently; the Plan line
    is the same on all of them (newer ones may add ", N to import" and such)."""
    m = re.search(r"^Plan: (\d+) to add, (\d+) to change, (\d+) to destroy", out, re.M)
    if m:
        return tuple(int(g) for g in m.groups())
    if re.search(r"^No changes\.", out, re.M):
        return (0, 0, 0)
    raise AssertionError(f"no plan summary in:\n{out}")


class Terraform:
    """Runs one CLI (Terraform or OpenTofu, see ``Cli``) in one working directory."""

    def __init__(self, workdir: Path, cli: Cli, extra_env=None):
        self.dir = Path(workdir)
        self.cli = cli
        # Always a real config file: the environment may point TF_CLI_CONFIG_FILE elsewhere.
        self.env = dict(os.environ, TF_CLI_CONFIG_FILE=str(cli.config), TF_IN_AUTOMATION="1",
                        CHECKPOINT_DISABLE="1", AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                        **(extra_env or {}))
        self.env.pop("TF_LOG", None)
        self.env.pop("TF_REATTACH_PROVIDERS", None)

    def _run(self, args, timeout):
        p = subprocess.run([self.cli.path, *args, "-no-color"], cwd=self.dir, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        out = p.stdout + p.stderr
        assert "panic" not in out.lower(), f"provider or {self.cli.name} panicked:\n{out}"
        assert "plugin crashed" not in out.lower(), out
        return p, out

    def run(self, *args, check=True, timeout=600):
        p, out = self._run(args, timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"{self.cli.name} {' '.join(args)} failed ({p.returncode}):\n{out}")
        return p.returncode, out

    def json(self, *args, timeout=600):
        """Runs a command that prints JSON and parses its stdout (warnings go to stderr)."""
        p, out = self._run(args, timeout)
        if p.returncode != 0:
            raise AssertionError(f"{self.cli.name} {' '.join(args)} failed ({p.returncode}):\n{out}")
        return json.loads(p.stdout)

    def apply(self, *vars_):
        return self.run("apply", "-auto-approve", "-input=false", *vars_)

    def plan_exitcode(self, *args):
        """0 = no changes, 2 = changes (terraform plan -detailed-exitcode)."""
        code, out = self.run("plan", "-detailed-exitcode", "-input=false", *args, check=False)
        assert code in (0, 2), out
        return code, out

    def state(self, address):
        for r in self.json("show", "-json").get("values", {}).get("root_module", {}).get("resources", []):
            if r["address"] == address:
                return r["values"]
        return None

    def output(self, name):
        return self.json("output", "-json", name)


@pytest.fixture
def example(tmp_path, cli):
    """Copies examples/NAME into a fresh directory and returns a runner for it on the test's CLI."""

    def make(name, **kw):
        dst = tmp_path / name
        shutil.copytree(REPO / "examples" / name, dst)
        return Terraform(dst, cli, **kw)

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
