"""paved_gpu_compute_pool with cloud = "gcp" end to end: the real Terraform / OpenTofu CLIs, the
real provider binary, the local Compute Engine API (gce.sh; there is no Compute emulator).

Every check reads the cloud through the Compute API (and, once, through the real gcloud CLI),
not just the state; the requests paved sent are validated against Google's discovery document.
"""
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import IN_CI, PROVIDER_BIN, plan_summary
from test_crash_safety import provider_children
from test_gce_server import Api, doc, gcloud_bin, methods_by_id, validate_log, validator  # noqa: F401 (fixtures)

ADDR = "paved_gpu_compute_pool.serving"
PROJECT = "paved-test"
REGION = "us-central1"
ENDPOINT = os.environ.get("PAVED_TEST_GCE_ENDPOINT", "http://127.0.0.1:18090")
QUICK = {"op_pending_s": 0.05, "op_running_s": 0.2, "instance_boot_s": 0.5, "instance_delete_s": 0.3,
         "create_retry_s": 0.3, "repair_delay_s": 0.5, "tick_s": 0.02}


@pytest.fixture
def gce():
    """The shared local Compute API, emptied and set to quick timings for each test."""
    api = Api(ENDPOINT)
    try:
        api.control("health")
    except (urllib.error.URLError, OSError) as e:
        msg = f"the local Compute API is not running at {ENDPOINT} ({e}); start it with bash acceptance-tests/gce.sh start"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    api.control("reset", {"config": True})
    api.control("config", QUICK)
    api.control("log/clear", {})
    yield api
    api.control("reset", {"config": True})


def world(gce):
    return gce.control("state")


def groups(gce):
    return {k: v for k, v in world(gce)["groups"].items() if k.startswith(f"{PROJECT}/")}


def templates(gce):
    return [t for t in world(gce)["templates"] if t.startswith(f"{PROJECT}/")]


def instances(gce):
    return {k: v for k, v in world(gce)["instances"].items() if k.startswith(f"{PROJECT}/")}


def group_name(state):
    return state["instance_group"].rsplit("/", 1)[1]


# Google credential sources the provider reads from its environment (tests choose them).
GOOGLE_ENV = ("GOOGLE_OAUTH_ACCESS_TOKEN", "GOOGLE_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS", "GCE_METADATA_HOST")


def pool(example, gce, **kw):
    tf = example("gpu_compute_pool_gcp")
    tf.vars = ["-var", f"gce_endpoint={ENDPOINT}"]
    for k in GOOGLE_ENV:
        tf.env.pop(k, None)
    return tf


def rsa_key(d):
    """A service account's key, made by the openssl CLI: (PKCS#8 PEM, modulus in hex)."""
    key = d / "sa.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)],
                   check=True, capture_output=True)
    out = subprocess.run(["openssl", "rsa", "-noout", "-modulus", "-in", str(key)], check=True, capture_output=True, text=True)
    return key.read_text(), out.stdout.strip().split("=", 1)[1]


def principals(gce):
    """Who sent each of the project's Compute requests (None: unauthenticated or refused)."""
    return [e["principal"] for e in gce.control("log")["entries"] if f"/projects/{PROJECT}/" in e["path"]]


def test_lifecycle(example, gce, validator, methods_by_id):
    tf = pool(example, gce)
    v = tf.vars
    tf.run("validate")

    # Plan needs no cloud: a dead endpoint still plans a create, with the ID and group known.
    code, out = tf.plan_exitcode("-var", "gce_endpoint=http://127.0.0.1:9")
    assert code == 2 and plan_summary(out) == (1, 0, 0), out
    assert re.search(r'instance_group\s+= "projects/paved-test/regions/us-central1/instanceGroupManagers/paved-gp-', out), out

    tf.apply(*v)
    st = tf.state(ADDR)
    assert st["id"].startswith("gp-") and st["gcp_project"] == PROJECT and st["region"] == REGION
    gname = group_name(st)

    # The group runs `desired` instances of the template, with GPUs and GCP-safe labels.
    g = gce.ok("GET", f"{PROJECT}/regions/{REGION}/instanceGroupManagers/{gname}")
    assert g["targetSize"] == 2 and g["status"]["isStable"], g
    assert g["distributionPolicy"]["targetShape"] == "BALANCED"
    assert sorted(z["zone"].rsplit("/", 1)[1] for z in g["distributionPolicy"]["zones"]) == ["us-central1-a", "us-central1-b"]
    ranked = sorted(g["instanceFlexibilityPolicy"]["instanceSelections"].values(), key=lambda s: s["rank"])
    assert [s["machineTypes"][0] for s in ranked] == ["g2-standard-4", "g2-standard-8"]
    assert g["description"] == "paved GPU pool; nodes 0..4"
    tmpl = gce.ok("GET", f"{PROJECT}/global/instanceTemplates/{st['instance_template']}")
    p = tmpl["properties"]
    assert p["machineType"].endswith("g2-standard-4")
    assert p["scheduling"]["onHostMaintenance"] == "TERMINATE" and p["scheduling"]["provisioningModel"] == "STANDARD"
    assert p["labels"]["paved-team"] == "search" and p["labels"]["paved-project"] == "search"
    assert p["labels"]["cost-center"] == "cc-1234" and p["labels"]["owner"] == "alice"
    assert p["labels"]["paved-pool-id"] == st["id"]
    meta = {i["key"]: i["value"] for i in p["metadata"]["items"]}
    assert "paved.dev/pool-id" in meta["startup-script"] and '"570.26"' in meta["startup-script"]
    insts = instances(gce)
    assert len(insts) == 2 and all(i["status"] == "RUNNING" and i["group"] == gname for i in insts.values())
    assert sorted(k.rsplit("/", 1)[1] for k in insts) == st["instance_ids"]
    for k in insts:
        _, zone, name = k.split("/")
        inst = gce.ok("GET", f"{PROJECT}/zones/{zone}/instances/{name}")
        assert inst["labels"]["paved-team"] == "search"
        assert inst["machineType"].endswith("/g2-standard-4")
    assert st["gpus_total"] == 2 and st["instance_type"] == "g2-standard-4"
    assert abs(st["hourly_cost_usd"] - 2 * 0.7068) < 1e-9
    assert st["tags_all"]["paved:team"] == "search"
    assert st["gpu_hourly_usd"] == 0.7068

    # The live report reads the pool's VMs in one aggregated list and prices them as the pool.
    log_before = len(gce.control("log")["entries"])
    p = subprocess.run([str(PROVIDER_BIN), "costs", "--format", "json", "--team", "search", "--no-aws", "--no-kubernetes",
                        "--gcp-project", PROJECT, "--gcp-endpoint", ENDPOINT],
                       capture_output=True, text=True, timeout=120,
                       env={**{k: x for k, x in os.environ.items() if k not in GOOGLE_ENV},
                            "GOOGLE_OAUTH_ACCESS_TOKEN": "paved-local-token"})
    assert p.returncode == 0, p.stderr
    [t] = json.loads(p.stdout)["teams"]
    assert (t["team"], t["project"], t["gpus_provisioned"], t["idle_gpus"]) == ("search", "search", 2, 2), t
    assert abs(t["hourly_usd"] - st["hourly_cost_usd"]) < 1e-9, t
    assert sorted(r["name"] for r in t["resources"]) == st["instance_ids"]
    assert {(r["kind"], r["resource"]) for r in t["resources"]} == {("gce_instance", "search-serving")}
    calls = [e["method"] for e in gce.control("log")["entries"][log_before:]]
    assert calls == ["compute.instances.aggregatedList"], calls

    # Second plan is empty, with and without refresh.
    assert tf.plan_exitcode(*v)[0] == 0
    assert tf.plan_exitcode("-refresh=false", *v)[0] == 0

    # Resize in place: the same group, no replacement.
    code, out = tf.plan_exitcode(*v, "-var", "desired=3")
    assert code == 2 and plan_summary(out) == (0, 1, 0) and "forces replacement" not in out, out
    tf.apply(*v, "-var", "desired=3")
    assert tf.state(ADDR)["id"] == st["id"] and len(instances(gce)) == 3
    assert groups(gce)[f"{PROJECT}/{REGION}/{gname}"]["targetSize"] == 3
    assert tf.plan_exitcode(*v, "-var", "desired=3")[0] == 0
    tf.apply(*v, "-var", "desired=2")
    assert len(instances(gce)) == 2 and tf.plan_exitcode(*v)[0] == 0

    # A tag change rolls a new template out through the group (patch, not a new group) and
    # removes the old template.
    main = tf.dir / "main.tf"
    main.write_text(main.read_text().replace('owner = "alice"', 'owner = "bob"'))
    code, out = tf.plan_exitcode(*v)
    assert code == 2 and plan_summary(out) == (0, 1, 0), out
    tf.apply(*v)
    st2 = tf.state(ADDR)
    assert st2["instance_template"] != st["instance_template"] and group_name(st2) == gname
    assert templates(gce) == [f"{PROJECT}/{st2['instance_template']}"]
    assert all(m["template"] == st2["instance_template"] for m in groups(gce)[f"{PROJECT}/{REGION}/{gname}"]["members"])
    assert tf.plan_exitcode(*v)[0] == 0

    # Import by PROJECT/REGION/NAME recovers every argument: the plan is empty again.
    applied = tf.state(ADDR)
    tf.run("state", "rm", ADDR)
    tf.run("import", *v, ADDR, f"{PROJECT}/{REGION}/search-serving")
    imported = tf.state(ADDR)
    assert {k: x for k, x in imported.items() if k != "timeouts"} == {k: x for k, x in applied.items() if k != "timeouts"}
    tf.run("apply", "-refresh-only", "-auto-approve", *v)
    assert tf.plan_exitcode(*v)[0] == 0

    # Out-of-band: an instance deleted (before the group repairs it) and the group resized
    # both show in the next plan, and apply puts them back.
    gce.control("config", {"repair_delay_s": 3600})
    victim = sorted(instances(gce))[0]
    _, zone, name = victim.split("/")
    gce.control("instances/delete", {"project": PROJECT, "zone": zone, "name": name})
    code, out = tf.plan_exitcode(*v)
    assert code == 2 and re.search(r"~ desired\s+= 1 -> 2\b", out), out
    gce.control("config", {"repair_delay_s": 0.5})
    tf.apply(*v)
    # The group recreates a lost instance under the same name. The apply either waited for
    # it (its refresh still saw the instance missing) or had nothing to change (the group had
    # already started the repair, which counts towards desired): both end with it running.
    deadline = time.time() + 60
    while instances(gce).get(victim, {}).get("status") != "RUNNING" and time.time() < deadline:
        time.sleep(0.2)
    assert len(instances(gce)) == 2 and instances(gce)[victim]["status"] == "RUNNING"
    assert tf.plan_exitcode(*v)[0] == 0
    gce.control("igm/resize", {"project": PROJECT, "region": REGION, "name": gname, "size": 4})
    code, out = tf.plan_exitcode(*v)
    assert code == 2 and re.search(r"~ desired\s+= 4 -> 2\b", out), out
    tf.apply(*v)
    assert groups(gce)[f"{PROJECT}/{REGION}/{gname}"]["targetSize"] == 2
    assert tf.plan_exitcode(*v)[0] == 0

    # Destroy leaves no group, template or instance: through the API and through gcloud.
    tf.run("destroy", "-auto-approve", *v)
    assert groups(gce) == {} and templates(gce) == [] and instances(gce) == {}
    assert tf.state(ADDR) is None
    g = gcloud_bin()
    env = {k: x for k, x in os.environ.items() if not k.startswith("CLOUDSDK_")}
    env.update({"CLOUDSDK_CONFIG": str(tf.dir / "gcloud"), "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": f"{ENDPOINT}/compute/v1/",
                "CLOUDSDK_AUTH_ACCESS_TOKEN": "paved-local-token", "CLOUDSDK_CORE_PROJECT": PROJECT,
                "CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
                "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1"})
    for what in (["instance-groups", "managed"], ["instance-templates"]):
        p = subprocess.run([g, "compute", *what, "list", "--format=json"], env=env, capture_output=True, text=True, timeout=180)
        assert p.returncode == 0 and json.loads(p.stdout) == [], (what, p.stdout, p.stderr)

    # Every request paved sent and every answer it got matches Google's discovery document.
    entries = gce.control("log")["entries"]
    assert any(e["method"] == "compute.regionInstanceGroupManagers.resize" for e in entries)
    writes = [e for e in entries if e["http"] in ("POST", "PATCH", "DELETE")
              and not e["path"].endswith(("/wait", "/listManagedInstances"))]
    assert writes and all(e["query"].get("requestId") for e in writes), [e["path"] for e in writes]
    assert validate_log(entries, validator, methods_by_id) == []


def test_credentials_from_a_key_adc_and_the_metadata_server(example, gce):
    """The project requires sign-in: no credentials fail before anything is made, with a
    sentence that says what to set; a service-account key (provider argument), an authorized
    user's ADC file (GOOGLE_APPLICATION_CREDENTIALS) and the metadata server (GCE_METADATA_HOST)
    each work, and the server names the identity each request came from. The key never
    reaches the state or the CLI's output."""
    tf = pool(example, gce)
    sa = "paved-ci@paved-test.iam.gserviceaccount.com"
    pem, modulus = rsa_key(tf.dir)
    gce.control("auth", {"required_projects": [PROJECT], "service_accounts": {sa: {"n": modulus}},
                         "refresh_tokens": {"refresh-alice": "alice@example.com"},
                         "metadata_principal": "node-sa@paved-test.iam.gserviceaccount.com"})
    v = [*tf.vars, "-var", "desired=1"]

    code, out = tf.run("apply", "-auto-approve", "-input=false", *v, check=False)
    assert code != 0 and "Google Cloud refused the credentials" in out and "GOOGLE_APPLICATION_CREDENTIALS" in out, out
    assert "paved_gpu_compute_pool.serving" in out or "with paved_gpu_compute_pool" in out, out
    assert groups(gce) == {} and templates(gce) == [] and tf.state(ADDR) is None

    key = {"type": "service_account", "project_id": PROJECT, "private_key_id": "k1", "private_key": pem,
           "client_email": sa, "client_id": "1", "token_uri": f"{ENDPOINT}/token"}
    base = [*tf.vars, "-var", "desired=1"]
    v = [*base, "-var", "gce_credentials=" + json.dumps(key)]
    gce.control("log/clear", {})
    _, out = tf.apply(*v)
    assert "PRIVATE KEY" not in out and len(instances(gce)) == 1, out
    assert "PRIVATE KEY" not in (tf.dir / "terraform.tfstate").read_text()
    assert set(principals(gce)) == {sa}
    assert tf.plan_exitcode(*v)[0] == 0

    # Application default credentials: an authorized user's file refreshes its token at the
    # file's token_uri.
    adc = tf.dir / "adc.json"
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "paved.apps.googleusercontent.com",
                               "client_secret": "s", "refresh_token": "refresh-alice", "token_uri": f"{ENDPOINT}/token"}))
    tf.env["GOOGLE_APPLICATION_CREDENTIALS"] = str(adc)
    gce.control("log/clear", {})
    assert tf.plan_exitcode(*base)[0] == 0
    assert set(principals(gce)) == {"alice@example.com"}

    # The metadata server (a VM's or GKE workload identity's service account).
    del tf.env["GOOGLE_APPLICATION_CREDENTIALS"]
    tf.env["GCE_METADATA_HOST"] = ENDPOINT.split("://", 1)[1]
    gce.control("log/clear", {})
    tf.run("destroy", "-auto-approve", *base)
    assert set(principals(gce)) == {"node-sa@paved-test.iam.gserviceaccount.com"}
    assert groups(gce) == {} and templates(gce) == [] and instances(gce) == {}

    # A key file that is not a key: a plan-time error on the argument, without the contents.
    code, out = tf.run("plan", "-input=false", *base, "-var", 'gce_credentials={"type": "service_account", "private_key": "SECRET"}',
                       check=False)
    assert code != 0 and "Unusable GCP credentials" in out and "without client_email" in out and "SECRET" not in out, out


def test_stockout_falls_back_to_another_zone(example, gce):
    tf = pool(example, gce)
    # us-central1-a has no room for either machine type: the group places both in -b.
    gce.control("capacity", {"zone": "us-central1-a", "available": 0})
    tf.apply(*tf.vars)
    zones = sorted(k.split("/")[1] for k in instances(gce))
    assert zones == ["us-central1-b", "us-central1-b"], zones
    st = tf.state(ADDR)
    assert st["gpus_total"] == 2 and tf.plan_exitcode(*tf.vars)[0] == 0
    # Machine-type fallback: no g2-standard-4 left in -b either; a third node takes the next type.
    gce.control("capacity", {"zone": "us-central1-b", "machineType": "g2-standard-4", "available": 2})
    tf.apply(*tf.vars, "-var", "desired=3")
    st = tf.state(ADDR)
    types = sorted(i["machineType"] for i in instances(gce).values())
    assert types == ["g2-standard-4", "g2-standard-4", "g2-standard-8"], types
    assert abs(st["hourly_cost_usd"] - (2 * 0.7068 + 0.8536)) < 1e-9
    assert tf.plan_exitcode(*tf.vars, "-var", "desired=3")[0] == 0
    tf.run("destroy", "-auto-approve", *tf.vars, "-var", "desired=3")
    assert groups(gce) == {} and templates(gce) == []


def test_all_zones_exhausted_fails_listing_what_was_tried_and_leaves_nothing(example, gce):
    tf = pool(example, gce)
    gce.control("capacity", {"zone": "*", "machineType": "*", "available": 0})
    code, out = tf.run("apply", "-auto-approve", *tf.vars, check=False)
    assert code != 0, out
    out = " ".join(out.split())  # diagnostics wrap at the terminal width
    assert "No GPU capacity" in out and "nothing is left running" in out, out
    assert "us-central1-a" in out and "us-central1-b" in out and "ZONE_RESOURCE_POOL_EXHAUSTED" in out, out
    assert "g2-standard-4, g2-standard-8" in out, out
    assert groups(gce) == {} and templates(gce) == [] and instances(gce) == {}
    assert tf.state(ADDR) is None
    # Capacity back: the same configuration applies.
    gce.control("capacity", {"zone": "*", "machineType": "*", "available": None})
    tf.apply(*tf.vars)
    assert len(instances(gce)) == 2
    tf.run("destroy", "-auto-approve", *tf.vars)
    assert groups(gce) == {} and templates(gce) == []


def test_spot_pool_and_quota_diagnostic(example, gce):
    tf = pool(example, gce)
    v = [*tf.vars, "-var", "capacity_type=spot"]
    gce.control("quota", {"region": REGION, "metric": "PREEMPTIBLE_NVIDIA_L4_GPUS", "limit": 1})
    code, out = tf.run("apply", "-auto-approve", *v, check=False)
    out = " ".join(out.split())
    # One Spot VM fits the quota; the second fails in every zone: the pool shrinks to what runs.
    assert code != 0 and "QUOTA_EXCEEDED" in out and "resized to the 1 instance" in out, out
    st = tf.state(ADDR)
    assert st["nodes"]["desired"] == 1 and len(st["instance_ids"]) == 1
    assert all(i["provisioningModel"] == "SPOT" for i in instances(gce).values())
    assert abs(st["hourly_cost_usd"] - 0.3973) < 1e-9
    gce.control("quota", {"region": REGION, "metric": "PREEMPTIBLE_NVIDIA_L4_GPUS", "limit": None})
    tf.apply(*v)
    assert len(instances(gce)) == 2 and tf.plan_exitcode(*v)[0] == 0
    tf.run("destroy", "-auto-approve", *v)
    assert groups(gce) == {} and templates(gce) == [] and instances(gce) == {}


def test_bad_gcp_configs_get_attribute_paths(example, gce):
    tf = pool(example, gce)
    main = tf.dir / "main.tf"
    src = main.read_text()
    main.write_text(src.replace('type  = "nvidia-l4"', 'type  = "nvidia-a10g"')
                    .replace('instance_types     = ["g2-standard-4", "g2-standard-8"]', 'instance_types     = ["g5.xlarge"]')
                    .replace('availability_zones = ["us-central1-a", "us-central1-b"]', 'availability_zones = ["us-east1-b"]\n  region             = "us-central1"')
                    .replace('image_id           = "projects/', 'image_id           = "ami-0123456789abcdef0" # projects/'))
    code, out = tf.run("validate", check=False)
    assert code != 0, out
    for needle in ("Accelerator not offered on GCP", "Not a GPU machine type", "Zone outside the region", "Invalid image_id"):
        assert needle in out, (needle, out)
    assert "nvidia-l4" in out and "us-central1-a" in out


POINTS = [
    # (id, the request after which the provider is killed, templates and groups by then)
    ("after-template-insert", "compute.instanceTemplates.insert", (1, 0)),
    ("after-group-insert", "compute.regionInstanceGroupManagers.insert", (1, 1)),
]


@pytest.mark.parametrize("point,method,made", POINTS, ids=[p[0] for p in POINTS])
def test_kill_mid_create_then_apply_converges(example, gce, point, method, made):
    tf = pool(example, gce)
    # Operations stay RUNNING for 3 s, so the provider is killed while it waits on one.
    gce.control("config", {"op_running_s": 3})
    apply = subprocess.Popen([tf.cli.path, "apply", "-auto-approve", "-input=false", "-no-color", *tf.vars],
                             cwd=tf.dir, env=tf.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while not any(e["method"] == method and e["status"] == 200 for e in gce.control("log")["entries"]):
            assert time.time() < deadline and apply.poll() is None, f"{method} never came"
            time.sleep(0.05)
        victims = provider_children(apply.pid)
        assert victims, "no terraform-provider-paved child found"
        for p in victims:
            os.kill(p.pid, signal.SIGKILL)
        out, _ = apply.communicate(timeout=120)
    finally:
        if apply.poll() is None:
            apply.kill()
    assert apply.returncode != 0, out
    time.sleep(3.5)  # the interrupted operation finishes on Google's side
    assert (len(templates(gce)), len(groups(gce))) == made, point
    gce.control("config", {"op_running_s": 0.2})

    inserts_before = sum(1 for e in gce.control("log")["entries"]
                         if e["method"] == "compute.regionInstanceGroupManagers.insert")
    tf.apply(*tf.vars)
    st = tf.state(ADDR)
    assert len(templates(gce)) == 1 and len(groups(gce)) == 1, world(gce)
    g = groups(gce)[f"{PROJECT}/{REGION}/{group_name(st)}"]
    assert g["targetSize"] == 2 and len(instances(gce)) == 2
    inserts = [e for e in gce.control("log")["entries"] if e["method"] == "compute.regionInstanceGroupManagers.insert"]
    # After the group insert: the retried insert carries the same requestId, so Google answers
    # with the first operation instead of a second group.
    assert len({e["query"]["requestId"][0] for e in inserts}) == 1, [e["query"] for e in inserts]
    assert len(inserts) == inserts_before + 1
    assert tf.plan_exitcode(*tf.vars)[0] == 0
    tf.run("destroy", "-auto-approve", *tf.vars)
    assert groups(gce) == {} and templates(gce) == [] and instances(gce) == {}


def test_destroy_then_create_again_under_the_same_name(example, gce):
    """Request IDs are deterministic, and Google remembers them: the second lifetime of a pool
    must still get a group and a template (not the first lifetime's finished operations)."""
    tf = pool(example, gce)
    tf.apply(*tf.vars, "-var", "desired=1")
    first = tf.state(ADDR)
    tf.run("destroy", "-auto-approve", *tf.vars, "-var", "desired=1")
    assert groups(gce) == {}
    tf.apply(*tf.vars, "-var", "desired=1")
    assert tf.state(ADDR)["id"] == first["id"] and len(groups(gce)) == 1 and len(instances(gce)) == 1
    tf.run("destroy", "-auto-approve", *tf.vars, "-var", "desired=1")
    assert groups(gce) == {} and templates(gce) == []
