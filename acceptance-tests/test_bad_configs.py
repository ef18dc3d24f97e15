"""Bad input gets a diagnostic that names the attribute and says what to do; never a panic.

Each case is a real `terraform validate` (or plan, for checks that need the provider's
defaults) of a small configuration."""
import re

import pytest


PROVIDER = '''
terraform {
  required_providers {
    paved = { source = "paved/paved" }
  }
}
provider "paved" {
  %s
  aws {
    region     = "us-east-1"
    access_key = "test"
    secret_key = "test"
    endpoints {
      ec2 = "http://127.0.0.1:9"
      sts = "http://127.0.0.1:9"
    }
  }
}
'''


def pool(**over):
    args = {
        "name": '"bad-pool"',
        "team": '"ml"',
        "image_id": '"ami-12345678"',
        "cuda_version": '"12.2"',
        "driver_version": '"535.104.05"',
    }
    args.update(over)
    body = "\n".join(f"  {k} = {v}" for k, v in args.items() if v is not None)
    accel = over.pop("_accel", 'accelerator {\n    type = "nvidia-a10g"\n  }')
    nodes = over.pop("_nodes", "nodes {\n    min = 1\n    max = 3\n    desired = 2\n  }")
    body = "\n".join(f"  {k} = {v}" for k, v in args.items() if v is not None and not k.startswith("_"))
    return f'resource "paved_gpu_compute_pool" "p" {{\n{body}\n  {accel}\n  {nodes}\n}}\n'


def vdb(*lines):
    body = "\n  ".join(('name = "docs"', 'team = "search"') + lines)
    return f'resource "paved_vector_db" "v" {{\n  {body}\n}}\n'


def fstore(*lines):
    body = "\n  ".join(('name = "drivers"', 'team = "pricing"') + lines)
    return f'resource "paved_feature_store" "f" {{\n  {body}\n}}\n'


def endpoint(*lines):
    body = "\n  ".join(('name = "llm"', 'team = "search"') + lines)
    return (f'resource "paved_model_endpoint" "e" {{\n  {body}\n'
            '  model {\n    uri = "s3://m/llm"\n    version = "v1"\n  }\n'
            '  runtime {\n    image = "srv:1"\n  }\n}\n')


CASES = [
    # (id, resource HCL, expected summary, expected source line shown by Terraform)
    ("desired-above-max", pool(_nodes="nodes {\n    min = 1\n    max = 3\n    desired = 5\n  }"),
     "nodes.desired is outside min..max", "desired = 5"),
    ("min-above-max", pool(_nodes="nodes {\n    min = 4\n    max = 3\n  }"),
     "nodes.min is larger than nodes.max", "min = 4"),
    ("unknown-accelerator", pool(_accel='accelerator {\n    type = "nvidia-b9000"\n  }'),
     "Unknown accelerator type", 'type = "nvidia-b9000"'),
    ("non-gpu-instance-type", pool(_accel="", instance_types='["g5.xlarge", "m5.large"]'),
     "Not a GPU instance type", 'instance_types = ["g5.xlarge", "m5.large"]'),
    ("cuda-too-new-for-driver", pool(cuda_version='"12.4"'),
     "CUDA version not supported by the driver", 'cuda_version = "12.4"'),
    ("unknown-cuda", pool(cuda_version='"13.7"'), "Unknown CUDA version", 'cuda_version = "13.7"'),
    ("bad-capacity-type", pool(capacity_type='"reserved"'), "Invalid capacity_type", 'capacity_type = "reserved"'),
    ("bad-name", pool(name='"Bad_Name"'), "Invalid pool name", 'name = "Bad_Name"'),
    ("missing-image", pool(image_id=None), "Missing image_id", 'resource "paved_gpu_compute_pool" "p"'),
    ("bad-timeout", pool(_nodes='nodes {\n    min = 1\n    max = 3\n  }\n  timeouts {\n    create = "ten minutes"\n  }'),
     "Invalid duration", 'create = "ten minutes"'),
    ("gcp-with-an-ami", pool(cloud='"gcp"'), "Invalid image_id", 'image_id = "ami-12345678"'),
    ("unknown-cloud", pool(cloud='"azure"'), "Unknown cloud", 'cloud = "azure"'),
    ("pgvector-dimension", vdb('engine = "pgvector"', 'collection {\n    name = "docs"\n    dimension = 3072\n  }'),
     "Dimension too large for the engine", "dimension = 3072"),
    ("pgvector-replicas", vdb('engine = "pgvector"', "replicas = 3"), "Engine does not cluster", "replicas = 3"),
    ("unknown-engine-version", vdb('engine = "qdrant"', 'engine_version = "0.9.0"'), "Unknown engine version",
     'engine_version = "0.9.0"'),
    ("unknown-engine", vdb('engine = "milvus"'), "Unknown engine", 'engine = "milvus"'),
    ("bad-distance", vdb('engine = "qdrant"', 'collection {\n    name = "docs"\n    dimension = 8\n    distance = "manhattan"\n  }'),
     "Unknown distance", 'distance = "manhattan"'),
    ("bad-backup", vdb('engine = "qdrant"', 'backup {\n    schedule = "nightly"\n    destination = "s3://b/p"\n  }'),
     "Invalid schedule", 'schedule = "nightly"'),
    ("file-registry-replicas", fstore("feature_server {\n    replicas = 3\n  }"),
     "File persistence allows one feature server", "replicas = 3"),
    ("vector-db-without-id", fstore('online_store {\n    kind = "vector_db"\n  }'), "Missing vector database",
     'kind = "vector_db"'),
    ("registry-outside-volume", fstore('registry = "file:///etc/registry.db"'), "Invalid location",
     'registry = "file:///etc/registry.db"'),
    ("endpoint-ref-other-namespace", endpoint('vector_db_id = "other/docs"'), "Reference in another namespace",
     'vector_db_id = "other/docs"'),
]


@pytest.mark.parametrize("case_id,hcl,summary,line", CASES, ids=[c[0] for c in CASES])
def test_validate_rejects_with_attribute_path(tmp_path, cli, case_id, hcl, summary, line):
    (tmp_path / "main.tf").write_text(PROVIDER % "" + hcl)
    tf = cli.runner(tmp_path)
    code, out = tf.run("validate", check=False)
    assert code == 1, out
    assert summary in out, out
    # Terraform prints the source line of the attribute path the provider named.
    assert line in out, out


def test_missing_team_is_a_plan_error_naming_team(tmp_path, cli):
    (tmp_path / "main.tf").write_text(PROVIDER % "" + pool(team=None))
    tf = cli.runner(tmp_path)
    assert tf.run("validate")[0] == 0
    code, out = tf.run("plan", check=False)
    assert code == 1 and "Missing team" in out and "default_team" in out, out


def test_default_team_satisfies_team(tmp_path, cli):
    (tmp_path / "main.tf").write_text(PROVIDER % 'default_team = "platform"' + pool(team=None))
    tf = cli.runner(tmp_path)
    code, out = tf.run("plan", check=False)
    assert code == 0, out
    assert re.search(r'"paved:team"\s+= "platform"', out), out


def test_bad_provider_config_names_the_attribute(tmp_path, cli):
    bad = PROVIDER.replace('secret_key = "test"', "").replace('ec2 = "http://127.0.0.1:9"', 'ec2 = "localhost:4566"')
    (tmp_path / "main.tf").write_text(bad % "" + pool())
    tf = cli.runner(tmp_path)
    code, out = tf.run("validate", check=False)
    assert code == 1, out
    assert "Incomplete static credentials" in out and "Invalid endpoint URL" in out, out


def test_unreachable_cloud_is_a_clear_error_not_a_hang(tmp_path, cli):
    (tmp_path / "main.tf").write_text(PROVIDER % "" + pool())
    tf = cli.runner(tmp_path)
    code, out = tf.run("apply", "-auto-approve", check=False, timeout=300)
    assert code == 1, out
    assert "GetCallerIdentity failed" in out, out
    assert tf.run("state", "list")[1].strip() == ""
