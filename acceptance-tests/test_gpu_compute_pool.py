"""paved_gpu_compute_pool end to end: real Terraform CLI, real provider binary, LocalStack EC2.

Every check reads the cloud through the EC2 API, not just Terraform's state."""
import re

from conftest import plan_summary, pool_instances, pool_templates

ADDR = "paved_gpu_compute_pool.training"


def tags_of(obj):
    return {t["Key"]: t["Value"] for t in obj.get("Tags", [])}


def test_lifecycle(example, ec2):
    tf = example("gpu_compute_pool")
    tf.run("validate")

    # Plan needs no cloud: point the provider at a dead endpoint and plan a create.
    code, out = tf.plan_exitcode("-var", "aws_endpoint=http://127.0.0.1:9")
    assert code == 2 and plan_summary(out) == (1, 0, 0), out

    tf.apply()
    pool = tf.state(ADDR)
    pool_id = pool["id"]
    assert pool_id.startswith("gp-")

    # Instances exist in EC2 with cost-attribution tags, launched from the pool's template.
    insts = pool_instances(ec2, pool_id)
    assert len(insts) == 2
    assert sorted(i["InstanceId"] for i in insts) == pool["instance_ids"]
    for i in insts:
        t = tags_of(i)
        assert t["paved:team"] == "recsys"
        assert t["paved:project"] == "recsys"
        assert t["cost-center"] == "cc-1234"
        assert t["owner"] == "alice"
        assert i["InstanceType"] == "g5.xlarge"
        assert i["Placement"]["AvailabilityZone"] == "us-east-1a"
    [lt] = pool_templates(ec2, pool_id)
    assert lt["LaunchTemplateId"] == pool["launch_template_id"]
    assert pool["gpus_total"] == 2
    assert abs(pool["hourly_cost_usd"] - 2 * 1.006) < 1e-9
    assert pool["instance_type"] == "g5.xlarge"

    # Second plan is empty, with and without refresh.
    assert tf.plan_exitcode()[0] == 0
    assert tf.plan_exitcode("-refresh=false")[0] == 0

    # Resize up and down in place: no replacement, exact counts in EC2.
    code, out = tf.plan_exitcode("-var", "desired=4")
    assert code == 2 and plan_summary(out) == (0, 1, 0) and "forces replacement" not in out, out
    tf.apply("-var", "desired=4")
    assert len(pool_instances(ec2, pool_id)) == 4
    assert tf.state(ADDR)["id"] == pool_id
    assert tf.plan_exitcode("-var", "desired=4")[0] == 0
    before = {i["InstanceId"]: i["LaunchTime"] for i in pool_instances(ec2, pool_id)}
    tf.apply("-var", "desired=1")
    left = pool_instances(ec2, pool_id)
    assert len(left) == 1
    # The oldest instance survives a shrink.
    assert left[0]["LaunchTime"] == min(before.values())
    assert tf.plan_exitcode("-var", "desired=1")[0] == 0

    # Import: forget the pool, import it by ID, and the plan is empty again.
    tf.apply("-var", "desired=2")
    applied = tf.state(ADDR)
    tf.run("state", "rm", ADDR)
    tf.run("import", "-var", "desired=2", ADDR, pool_id)
    imported = tf.state(ADDR)
    assert {k: v for k, v in imported.items() if k != "timeouts"} == {k: v for k, v in applied.items() if k != "timeouts"}
    # state rm drops the root outputs; a refresh-only apply writes them back.
    tf.run("apply", "-refresh-only", "-auto-approve", "-var", "desired=2")
    assert tf.plan_exitcode("-var", "desired=2")[0] == 0
    # REGION/ID works too.
    tf.run("state", "rm", ADDR)
    tf.run("import", "-var", "desired=2", ADDR, f"us-east-1/{pool_id}")
    tf.run("apply", "-refresh-only", "-auto-approve", "-var", "desired=2")
    assert tf.plan_exitcode("-var", "desired=2")[0] == 0

    # Out-of-band termination shows as drift and apply heals it.
    victim = pool_instances(ec2, pool_id)[0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[victim])
    code, out = tf.plan_exitcode("-var", "desired=2")
    assert code == 2 and re.search(r"~ desired\s+= 1 -> 2\b", out), out
    tf.apply("-var", "desired=2")
    live = pool_instances(ec2, pool_id)
    assert len(live) == 2 and victim not in {i["InstanceId"] for i in live}
    assert tf.plan_exitcode("-var", "desired=2")[0] == 0

    # Destroy leaves nothing running and no template.
    tf.run("destroy", "-auto-approve", "-var", "desired=2")
    assert pool_instances(ec2, pool_id) == []
    assert pool_templates(ec2, pool_id) == []
    assert tf.state(ADDR) is None


def test_whole_pool_deleted_out_of_band_is_recreated(example, ec2):
    tf = example("gpu_compute_pool")
    tf.apply("-var", "desired=1")
    pool_id = tf.state(ADDR)["id"]
    ids = [i["InstanceId"] for i in pool_instances(ec2, pool_id)]
    ec2.terminate_instances(InstanceIds=ids)
    for lt in pool_templates(ec2, pool_id):
        ec2.delete_launch_template(LaunchTemplateId=lt["LaunchTemplateId"])
    code, out = tf.plan_exitcode("-var", "desired=1")
    assert code == 2 and plan_summary(out) == (1, 0, 0), out
    tf.apply("-var", "desired=1")
    new_id = tf.state(ADDR)["id"]
    assert new_id == pool_id and len(pool_instances(ec2, new_id)) == 1  # the ID derives from region and name
    tf.run("destroy", "-auto-approve", "-var", "desired=1")
    assert pool_instances(ec2, new_id) == []


def test_tags_and_team_update_in_place(example, ec2):
    tf = example("gpu_compute_pool")
    tf.apply("-var", "desired=1")
    pool_id = tf.state(ADDR)["id"]
    main = tf.dir / "main.tf"
    main.write_text(main.read_text().replace('owner = "alice"', 'owner = "bob"').replace('team               = "recsys"', 'team               = "search"'))
    code, out = tf.plan_exitcode("-var", "desired=1")
    assert code == 2 and plan_summary(out) == (0, 1, 0) and "forces replacement" not in out, out
    tf.apply("-var", "desired=1")
    assert tf.state(ADDR)["id"] == pool_id
    [inst] = pool_instances(ec2, pool_id)
    t = tags_of(inst)
    assert t["owner"] == "bob" and t["paved:team"] == "search"
    [lt] = pool_templates(ec2, pool_id)
    lt_tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [lt["LaunchTemplateId"]]}])["Tags"]
    assert {t["Key"]: t["Value"] for t in lt_tags}["paved:team"] == "search"
    # Import after an in-place change recovers the new values.
    tf.run("state", "rm", ADDR)
    tf.run("import", "-var", "desired=1", ADDR, pool_id)
    assert tf.state(ADDR)["team"] == "search" and tf.state(ADDR)["tags"] == {"owner": "bob"}
    tf.run("apply", "-refresh-only", "-auto-approve", "-var", "desired=1")
    assert tf.plan_exitcode("-var", "desired=1")[0] == 0
    # A change to a replace-only argument says so in the plan.
    main.write_text(main.read_text().replace('cuda_version   = "12.2"', 'cuda_version   = "12.1"'))
    code, out = tf.plan_exitcode("-var", "desired=1")
    assert code == 2 and plan_summary(out) == (1, 0, 1), out
    assert re.search(r"~ cuda_version\s+= \"12\.2\" -> \"12\.1\" # forces replacement", out), out
    tf.run("destroy", "-auto-approve", "-var", "desired=1")
    assert pool_instances(ec2, pool_id) == []
