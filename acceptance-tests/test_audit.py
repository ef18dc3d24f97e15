"""The audit trail (paved.dev/audit/v1) with the real CLIs and LocalStack: a pool's create,
update, import and delete each leave exactly one intent and one result record sharing a
request id, every record validates against docs/audit.schema.json, the provider's secret is
nowhere in the trail, an unwritable trail refuses a create before EC2 sees it, an intent left
by a dead process is reported and closed by the next run, and `terraform-provider-paved audit`
prints and filters the trail."""
import json
import os
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import jsonschema
from conftest import ENDPOINT, PROVIDER_BIN, Terraform, pool_instances

REPO = Path(__file__).resolve().parent.parent
SECRET = "paved-audit-secret-7f3a9c"

MAIN = """
terraform {
  required_providers {
    paved = { source = "paved/paved" }
  }
}
variable "audit_file" { type = string }
variable "desired" {
  type    = number
  default = 1
}
provider "paved" {
  default_team    = "%(team)s"
  default_project = "audit"
  aws {
    region     = "us-east-1"
    access_key = "test"
    secret_key = "%(secret)s"
    endpoints {
      ec2 = "%(endpoint)s"
      sts = "%(endpoint)s"
    }
  }
  audit {
    file = var.audit_file
  }
}
resource "paved_gpu_compute_pool" "p" {
  name               = "%(team)s"
  image_id           = "ami-04681a1dbd79675a5"
  availability_zones = ["us-east-1a"]
  accelerator {
    type  = "nvidia-a10g"
    count = 1
  }
  nodes {
    min     = 0
    max     = 2
    desired = var.desired
  }
  cuda_version   = "12.2"
  driver_version = "535.104.05"
}
"""


def records(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def audit_cli(*args):
    p = subprocess.run([str(PROVIDER_BIN), "audit", *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_every_change_has_one_intent_and_one_result(tmp_path, cli, ec2):
    team = f"audit-{uuid.uuid4().hex[:6]}"
    log = tmp_path / "trail" / "paved.jsonl"
    log.parent.mkdir()
    (tmp_path / "main.tf").write_text(MAIN % {"team": team, "secret": SECRET, "endpoint": ENDPOINT})
    tf = Terraform(tmp_path, cli, extra_env={"PAVED_REQUESTER": "alice@example.com"})
    v = ("-var", f"audit_file={log}")
    addr = "paved_gpu_compute_pool.p"

    # A trail that cannot be written refuses the create before EC2 is called.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    code, out = tf.run("apply", "-auto-approve", "-input=false", "-var", f"audit_file={blocker}/paved.jsonl", check=False)
    flat = " ".join(out.split())
    assert code != 0 and "Audit record not written" in flat and "nothing was changed" in flat, out
    assert tf.state(addr) is None
    tagged = ec2.describe_instances(Filters=[{"Name": "tag:paved:pool", "Values": [team]}])
    assert [i for r in tagged["Reservations"] for i in r["Instances"]] == []

    tf.apply(*v)
    pool_id = tf.state(addr)["id"]
    tf.apply(*v, "-var", "desired=2")
    assert len(pool_instances(ec2, pool_id)) == 2
    tf.run("state", "rm", addr)
    tf.run("import", *v, "-var", "desired=2", addr, pool_id)
    assert tf.plan_exitcode(*v, "-var", "desired=2")[0] == 0  # plans write nothing
    tf.run("destroy", "-auto-approve", "-input=false", *v, "-var", "desired=2")
    assert pool_instances(ec2, pool_id) == []

    recs = records(log)
    schema = json.loads((REPO / "docs" / "audit.schema.json").read_text())
    for r in recs:
        jsonschema.validate(r, schema)
    by_id = {}
    for r in recs:
        by_id.setdefault(r["request_id"], []).append(r)
    # One intent then one result per change, in that order, and nothing else.
    assert all([x["phase"] for x in rs] == ["intent", "result"] for rs in by_id.values()), recs
    actions = [rs[0]["action"] for rs in by_id.values()]
    assert Counter(actions) == Counter({"create": 1, "update": 1, "import": 1, "delete": 1}), actions
    for rs in by_id.values():
        intent, result = rs
        assert result["result"] == "succeeded" and result["duration_ms"] >= 0, result
        assert intent["time"] <= result["time"]
        assert result["resource_id"] == pool_id, result
        assert intent["front_end"] == "terraform" and intent["requester"] == "alice@example.com"
        assert intent["resource_type"] == "paved_gpu_compute_pool"
        if intent["action"] != "import":  # changes check the credentials: the identity paved acts as
            assert result["actor"]["aws"].startswith("arn:aws:"), result
    [create] = [rs[0] for rs in by_id.values() if rs[0]["action"] == "create"]
    assert (create["team"], create["project"], create["name"]) == (team, "audit", team)
    assert {"argument": "name", "value": team} in create["changed"]
    assert {"argument": "nodes"} in create["changed"]
    [update] = [rs[0] for rs in by_id.values() if rs[0]["action"] == "update"]
    assert [c["argument"] for c in update["changed"]] == ["nodes"], update
    assert SECRET not in log.read_text()

    # The command prints the trail and filters it.
    table = audit_cli("--file", str(log), "--resource", pool_id)
    assert sum(1 for line in table.splitlines() if pool_id in line) == 8, table
    # An import's intent knows only the ID, so the team filter finds the other 7.
    by_team = audit_cli("--file", str(log), "--team", team)
    assert sum(1 for line in by_team.splitlines() if pool_id in line) == 7, by_team
    js = [json.loads(line) for line in audit_cli("--file", str(log), "--resource", pool_id, "--format", "json",
                                                   "--since", "1h").splitlines()]
    assert len(js) == 8 and all(r["resource_id"] == pool_id for r in js)
    assert audit_cli("--file", str(log), "--team", "nobody").splitlines()[1:] == []


def test_an_interrupted_change_is_reported_and_closed_by_the_next_run(tmp_path, cli):
    log = tmp_path / "paved.jsonl"
    dead = subprocess.Popen(["true"])
    dead.wait()
    rid = str(uuid.uuid4())
    intent = {"schema": "paved.dev/audit/v1", "time": "2026-12-04T10:00:00.000Z", "phase": "intent",
              "request_id": rid, "front_end": "terraform", "resource_type": "paved_gpu_compute_pool",
              "name": "crashed", "team": "ml", "action": "create", "changed": [{"argument": "name", "value": "crashed"}],
              "host": Path("/proc/sys/kernel/hostname").read_text().strip(), "pid": dead.pid}
    log.write_text(json.dumps(intent) + "\n")
    # A configuration that only reads (the provider is configured, nothing is changed).
    head = MAIN.split('resource "paved_gpu_compute_pool"')[0] % {"team": "audit-idle", "secret": SECRET, "endpoint": ENDPOINT}
    (tmp_path / "main.tf").write_text(head + """
data "paved_gpu_instance_types" "a10g" {
  accelerator   = "nvidia-a10g"
  gpus_per_node = 1
}
""")
    tf = Terraform(tmp_path, cli)
    code, out = tf.run("plan", "-input=false", "-var", f"audit_file={log}")
    flat = " ".join(out.split())
    assert "Interrupted changes in the audit trail" in flat and rid in flat, out
    recs = records(log)
    assert [r["phase"] for r in recs] == ["intent", "result"]
    assert recs[1]["result"] == "interrupted" and recs[1]["request_id"] == rid and str(dead.pid) in recs[1]["error"]
    jsonschema.validate(recs[1], json.loads((REPO / "docs" / "audit.schema.json").read_text()))
    # Closed once: the next run reports nothing.
    code, out = tf.run("plan", "-input=false", "-var", f"audit_file={log}")
    assert "Interrupted changes" not in out and len(records(log)) == 2
