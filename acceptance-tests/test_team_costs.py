"""Live cost by team, idle GPUs, budgets and the Infracost format, with the real CLI against
LocalStack and the local control plane: `data.paved_team_costs` and
`terraform-provider-paved costs` read what runs (EC2 by tag, Pods and claims by label) and must
equal the resources' own `hourly_cost_usd`, the endpoint's GPU at its pool's per-GPU price; a GPU the pool provisions and no pod requests is
idle cost; a budget below what the team runs refuses a new pool before EC2 sees it (counted
through the EC2 API), while a shrink still goes through; `costs --plan --format infracost`
writes a file valid under Infracost's published JSON schema.

Each run uses its own team, so nothing else in the cluster or in LocalStack is counted."""
import json
import os
import subprocess
import uuid
from pathlib import Path

import jsonschema
from conftest import ENDPOINT, PROVIDER_BIN, Terraform

HERE = Path(__file__).resolve().parent
G5_XLARGE = 1.006  # catalog on-demand price, USD per hour (1 A10G)

MAIN = """
terraform {
  required_providers {
    paved = { source = "paved/paved" }
  }
}
variable "kubeconfig" { type = string }
variable "aws_endpoint" {
  type    = string
  default = "%(endpoint)s"
}
variable "budget" {
  type    = number
  default = 1000000
}
variable "desired" {
  type    = number
  default = 2
}
variable "max" {
  type    = number
  default = 3
}
variable "second" {
  type    = bool
  default = false
}

provider "paved" {
  default_team    = "%(team)s"
  default_project = "costs"
  aws {
    region     = "us-east-1"
    access_key = "test"
    secret_key = "test"
    endpoints {
      ec2 = var.aws_endpoint
      sts = var.aws_endpoint
    }
  }
  kubernetes {
    config_path = var.kubeconfig
  }
  budgets {
    team        = "%(team)s"
    monthly_usd = var.budget
  }
}

resource "paved_gpu_compute_pool" "a" {
  name               = "%(team)s-a"
  image_id           = "ami-04681a1dbd79675a5"
  availability_zones = ["us-east-1a"]
  accelerator {
    type  = "nvidia-a10g"
    count = 1
  }
  nodes {
    min     = 1
    max     = var.max
    desired = var.desired
  }
  cuda_version   = "12.2"
  driver_version = "535.104.05"
}

resource "paved_gpu_compute_pool" "b" {
  count              = var.second ? 1 : 0
  name               = "%(team)s-b"
  image_id           = "ami-04681a1dbd79675a5"
  availability_zones = ["us-east-1a"]
  accelerator {
    type  = "nvidia-a10g"
    count = 1
  }
  nodes {
    min     = 1
    max     = 1
    desired = 1
  }
  cuda_version   = "12.2"
  driver_version = "535.104.05"
}

resource "paved_model_endpoint" "e" {
  name      = "%(team)s-ep"
  namespace = "default"
  pool_id   = "gp-local"
  # Its GPU share at the pool's price per GPU (the pods run on the local GPU nodes).
  gpu_hourly_usd = paved_gpu_compute_pool.a.gpu_hourly_usd
  model {
    uri     = "s3://models/llm-7b"
    version = "v1"
  }
  runtime {
    image        = "registry.local/model-server:1"
    cuda_version = "12.2"
  }
  resources {
    gpus   = 1
    cpu    = "1"
    memory = "2Gi"
  }
  autoscaling {
    min_replicas = 1
    max_replicas = 1
  }
  health {
    startup_timeout = "30s"
  }
}
"""

REPORT = """
terraform {
  required_providers {
    paved = { source = "paved/paved" }
  }
}
variable "kubeconfig" { type = string }
provider "paved" {
  aws {
    region     = "us-east-1"
    access_key = "test"
    secret_key = "test"
    endpoints {
      ec2 = "%(endpoint)s"
      sts = "%(endpoint)s"
    }
  }
  kubernetes {
    config_path = var.kubeconfig
  }
}
data "paved_team_costs" "t" {
  team = "%(team)s"
}
output "costs" {
  value = data.paved_team_costs.t
}
"""


def instances_of_team(ec2, team):
    resp = ec2.describe_instances(Filters=[
        {"Name": "tag:team", "Values": [team]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
    return [i for r in resp["Reservations"] for i in r["Instances"]]


def cli_report(cluster, team):
    p = subprocess.run([str(PROVIDER_BIN), "costs", "--format", "json", "--team", team, "--region", "us-east-1",
                        "--aws-endpoint", ENDPOINT, "--kubeconfig", str(cluster.kubeconfig)],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test"))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_team_costs_idle_gpus_budgets_and_infracost(tmp_path, cli, ec2, cluster):
    team = f"costs-{uuid.uuid4().hex[:6]}"
    kc = ("-var", f"kubeconfig={cluster.kubeconfig}")
    main = tmp_path / "main"
    main.mkdir()
    (main / "main.tf").write_text(MAIN % {"team": team, "endpoint": ENDPOINT})
    tf = Terraform(main, cli)
    tf.apply(*kc)
    try:
        pool, ep = tf.state("paved_gpu_compute_pool.a"), tf.state("paved_model_endpoint.e")
        assert pool["gpus_total"] == 2 and ep["ready_replicas"] == 1, (pool, ep)
        resources_hourly = pool["hourly_cost_usd"] + ep["hourly_cost_usd"]
        # The endpoint's GPU is priced at the pool's per-GPU price (1 A10G per g5.xlarge),
        # plus OpenCost's default CPU and memory prices.
        assert pool["gpu_hourly_usd"] == G5_XLARGE, pool
        unit = G5_XLARGE + 0.031611 + 2 * 0.004237
        assert abs(ep["hourly_cost_usd"] - unit) < 0.00006, ep
        assert abs(ep["monthly_cost_usd"]["max"] - unit * 730) < 0.006, ep

        # The data source reads what runs and prices it as the resources do.
        rep = tmp_path / "report"
        rep.mkdir()
        (rep / "main.tf").write_text(REPORT % {"team": team, "endpoint": ENDPOINT})
        rtf = Terraform(rep, cli)
        rtf.apply(*kc)
        costs = rtf.output("costs")
        [t] = costs["teams"]
        assert (t["team"], t["project"]) == (team, "costs"), t
        assert abs(t["hourly_usd"] - resources_hourly) < 0.0005, (t, resources_hourly)
        assert abs(costs["total_hourly_usd"] - resources_hourly) < 0.0005
        assert abs(t["monthly_usd"] - t["hourly_usd"] * 730) < 0.006
        # 2 GPUs provisioned by the pool, 1 requested by the endpoint's pod: 1 idle, at the
        # pool's price per GPU.
        assert (t["gpus_provisioned"], t["gpus_requested"], t["idle_gpus"]) == (2, 1, 1), t
        assert abs(t["idle_gpu_hourly_usd"] - G5_XLARGE) < 1e-6, t
        kinds = sorted(r["kind"] for r in t["resources"])
        assert kinds == ["ec2_instance", "ec2_instance", "pod"], t["resources"]
        assert {r["name"] for r in t["resources"] if r["kind"] == "ec2_instance"} == set(pool["instance_ids"])
        assert any(s.startswith("ec2 us-east-1") for s in costs["sources"]) and any(s.startswith("kubernetes") for s in costs["sources"])

        # The binary prints the same report.
        js = cli_report(cluster, team)
        [ct] = js["teams"]
        for k in ("hourly_usd", "gpus_provisioned", "gpus_requested", "idle_gpus", "idle_gpu_hourly_usd"):
            assert abs(ct[k] - t[k]) < 0.0005, (k, ct, t)

        # Infracost's format from a plan that raises nodes.max from 3 to 4: the paved resources
        # at their maximum; the diff is the pool's maximum before and after.
        tf.run("plan", "-input=false", "-out=grow.tfplan", "-var", "max=4", *kc)
        plan = tf.json("show", "-json", "grow.tfplan")
        (main / "grow.json").write_text(json.dumps(plan))
        [pc] = [rc["change"] for rc in plan["resource_changes"] if rc["address"] == "paved_gpu_compute_pool.a"]
        grow = pc["after"]["monthly_cost_usd"]["max"] - pc["before"]["monthly_cost_usd"]["max"]
        assert grow > 0, pc
        p = subprocess.run([str(PROVIDER_BIN), "costs", "--plan", str(main / "grow.json"), "--format", "infracost"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        schema = json.loads((HERE / "schemas" / "infracost.schema.json").read_text())
        jsonschema.validate(out, schema)
        names = {r["name"] for r in out["projects"][0]["breakdown"]["resources"]}
        assert names == {"paved_gpu_compute_pool.a", "paved_model_endpoint.e"}, names
        assert abs(float(out["diffTotalMonthlyCost"]) - grow) < 0.011, (out["diffTotalMonthlyCost"], grow)
        assert abs(float(out["totalMonthlyCost"]) - sum(
            rc["change"]["after"]["monthly_cost_usd"]["max"] for rc in plan["resource_changes"]
            if rc["type"].startswith("paved_"))) < 0.011, out["totalMonthlyCost"]
        assert out["projects"][0]["summary"]["totalSupportedResources"] == 2

        # A budget below what the team runs: a new pool is refused before EC2 sees it (at plan
        # time already, since the clouds answer), with the team, budget and both figures.
        committed_monthly = t["monthly_usd"]
        before = len(instances_of_team(ec2, team))
        low = f"budget={int(committed_monthly) - 1}"
        code, out = tf.run("apply", "-auto-approve", "-input=false", "-var", low, "-var", "second=true", *kc, check=False)
        assert code != 0, out
        flat = " ".join(out.split())
        assert "Team budget exceeded" in flat and team in flat and f"{int(committed_monthly) - 1:.2f}" in flat, out
        assert "USD/month committed elsewhere" in flat, out
        assert len(instances_of_team(ec2, team)) == before
        assert not [i for i in instances_of_team(ec2, team)
                    if {x["Key"]: x["Value"] for x in i["Tags"]}.get("paved:pool") == f"{team}-b"]
        # A shrink is still admitted under the same budget.
        tf.apply("-var", low, "-var", "desired=1", *kc)
        assert len(instances_of_team(ec2, team)) == 1
        # Offline: the plan goes on with a warning instead of the check.
        code, out = tf.run("plan", "-input=false", "-refresh=false", "-var", "budget=1", "-var", "second=true",
                           "-var", "desired=1", "-var", "aws_endpoint=http://127.0.0.1:9", *kc, check=False)
        assert code == 0, out
        assert "Budget not checked at plan time" in " ".join(out.split()), out
    finally:
        tf.run("destroy", "-auto-approve", "-input=false", *kc)
    assert instances_of_team(ec2, team) == []
