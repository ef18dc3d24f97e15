"""What current CLIs offer beyond protocol 6.0, driven through real CLIs: provider functions,
write-only arguments, the ephemeral credentials resource, planned destroys with deletion
protection. Each test runs on the CLIs that have the feature (and, where an older CLI must be
refused cleanly, on the others)."""
import base64
import json
import re

import pytest


WO_SECRET = "wo-Redis-Pa55-never-in-state"


@pytest.mark.cli_features("functions")
def test_functions_from_locals_and_outputs_return_the_catalog(example):
    tf = example("functions")
    tf.run("validate")
    tf.apply()
    hourly = tf.output("pool_hourly_usd")
    assert hourly["on_demand"] == pytest.approx(3 * 1.006)  # 3 × g5.xlarge on demand
    assert hourly["spot"] == pytest.approx(3 * 1.006 * 0.45, abs=1e-4)
    assert tf.output("instance_types") == ["g5.xlarge", "g5.2xlarge", "g5.4xlarge", "g5.8xlarge"]
    assert tf.output("min_driver") == "550.54.14"
    assert tf.output("driver_535_runs_cuda") is False
    # The same values as the data source that reads the catalog.
    ds = example("gpu_instance_types")
    ds.apply()
    assert ds.output("cheapest")["name"] == "g5.xlarge"
    # Pure: a re-plan is empty.
    assert tf.plan_exitcode()[0] == 0
    # A bad accelerator is a function error naming the argument, at plan time.
    code, out = tf.run("plan", "-var", "accelerator=nvidia-b9000", check=False)
    assert code == 1, out
    assert re.search(r'Invalid value for "accelerator" parameter', out), out
    assert "not in paved's catalog" in flat(out) and "nvidia-a10g" in out
    code, out = tf.run("plan", "-var", "gpus_per_node=3", check=False)
    assert code == 1 and re.search(r'Invalid value for "count" parameter', out), out
    code, out = tf.run("plan", "-var", "cuda_version=13.7", check=False)
    assert code == 1 and "13.7" in out and "cuda_version" in out, out


def flat(out):
    """CLI output with its line wrapping undone."""
    return " ".join(out.split())


def _no_trace(tf, secret):
    """The secret is in neither `show -json` nor the state file."""
    _, shown = tf.run("show", "-json")
    assert secret not in shown
    state = (tf.dir / "terraform.tfstate").read_text()
    assert secret not in state
    return json.loads(shown)


def _store_secret(cluster, name):
    s = cluster.get("secret", f"{name}-online-store")
    return base64.b64decode(s["data"]["connection-string"]).decode()


@pytest.mark.cli_features("write_only", "ephemeral")
def test_write_only_and_ephemeral_secrets_never_reach_state(example, cluster):
    tf = example("write_only")
    kc = ("-var", f"kubeconfig={cluster.kubeconfig}")
    pw = ("-var", f"redis_password={WO_SECRET}")
    try:
        # Installs the local ./creds module (paved itself comes from dev_overrides).
        tf.run("get")
        tf.run("validate")
        # The database first: its credentials are opened at plan time (see the example).
        tf.apply(*kc, *pw, "-target=paved_vector_db.docs")
        tf.apply(*kc, *pw)
        # The write-only value reached the cluster ...
        assert _store_secret(cluster, "wo-external") == f"redis.example.internal:6379,password={WO_SECRET}"
        # ... and the vector database's key reached the second store through the ephemeral
        # resource and a module output marked ephemeral.
        key = base64.b64decode(cluster.get("secret", "wo-docs-credentials")["data"]["api-key"]).decode()
        assert _store_secret(cluster, "wo-vdbkey") == f"wo-docs.default.svc.cluster.local:6333,password={key}"
        shown = _no_trace(tf, WO_SECRET)
        for r in shown["values"]["root_module"]["resources"]:
            if r["type"] == "paved_feature_store":
                assert r["values"]["online_store"]["connection_string_wo"] is None
                assert r["values"]["online_store"]["connection_string"] is None
        assert tf.plan_exitcode(*kc, *pw)[0] == 0
        # Rotation: a new value is written only when the version says so.
        new = ("-var", "redis_password=rotated-" + WO_SECRET)
        assert tf.plan_exitcode(*kc, *new)[0] == 0, "a write-only change alone is invisible"
        code, out = tf.plan_exitcode(*kc, *new, "-var", "password_version=2")
        assert code == 2 and "connection_string_wo_version" in out, out
        tf.apply(*kc, *new, "-var", "password_version=2")
        assert _store_secret(cluster, "wo-external").endswith("password=rotated-" + WO_SECRET)
        _no_trace(tf, "rotated-" + WO_SECRET)
        assert tf.plan_exitcode(*kc, *new, "-var", "password_version=2")[0] == 0
    finally:
        tf.run("destroy", "-auto-approve", *kc, *pw, check=False)
    assert cluster.get("secret", "wo-external-online-store") is None
    assert cluster.get("statefulset", "wo-docs") is None


@pytest.mark.primary_cli
def test_write_only_arguments_are_refused_by_clis_without_them(tmp_path, cli):
    assert not cli.supports("write_only"), f"{cli.name} is meant to be a CLI without write-only support"
    d = tmp_path / "wo"
    d.mkdir()
    (d / "main.tf").write_text(f'''
terraform {{
  required_providers {{
    paved = {{ source = "paved/paved" }}
  }}
}}
provider "paved" {{
  default_team = "pricing"
}}
resource "paved_feature_store" "legacy" {{
  name = "wo-legacy"
  online_store {{
    kind                 = "external"
    connection_string_wo = "redis:6379,password=x"
  }}
}}
''')
    tf = cli.runner(d)
    code, out = tf.run("validate", check=False)
    assert code == 1, out
    assert "Write-only argument not supported by this CLI" in flat(out), out
    assert "connection_string_wo" in out and "1.11" in out


def _vdb_config(cluster, protection):
    return f'''
terraform {{
  required_providers {{
    paved = {{ source = "paved/paved" }}
  }}
}}
provider "paved" {{
  default_team = "search"
  kubernetes {{
    config_path = "{cluster.kubeconfig}"
  }}
}}
resource "paved_vector_db" "kept" {{
  name                = "kept"
  engine              = "pgvector"
  deletion_protection = {str(protection).lower()}
  storage {{
    size = "1Gi"
  }}
  collection {{
    name      = "faq"
    dimension = 8
  }}
}}
'''


def test_deletion_protection_refuses_destroy_and_destroy_plans_warn(tmp_path, cli, cluster):
    d = tmp_path / "dp"
    d.mkdir()
    main = d / "main.tf"
    main.write_text(_vdb_config(cluster, True))
    tf = cli.runner(d)
    try:
        tf.apply()
        assert tf.state("paved_vector_db.kept")["deletion_protection"] is True
        assert tf.plan_exitcode()[0] == 0
        if cli.kind == "tofu" or cli.version >= (1, 3):
            # The destroy is refused at plan time, naming the attribute.
            code, out = tf.run("plan", "-destroy", check=False)
            assert code == 1 and "Deletion protection is on" in flat(out), out
            assert "deletion_protection" in out
        code, out = tf.run("destroy", "-auto-approve", check=False)
        assert code == 1 and "Deletion protection is on" in flat(out), out
        # Nothing was deleted, and the state still has it.
        assert cluster.get("statefulset", "kept") is not None
        assert tf.state("paved_vector_db.kept") is not None
        # Turning it off is an in-place update; then a destroy plan warns about the data.
        main.write_text(_vdb_config(cluster, False))
        code, out = tf.plan_exitcode()
        assert code == 2 and "1 to change" in out, out
        tf.apply()
        if cli.kind == "tofu" or cli.version >= (1, 3):
            code, out = tf.run("plan", "-destroy")
            assert "Destroying a vector database deletes its data" in flat(out) and "faq" in out, out
    finally:
        main.write_text(_vdb_config(cluster, False))
        tf.run("apply", "-auto-approve", check=False)
        tf.run("destroy", "-auto-approve", check=False)
    assert cluster.get("statefulset", "kept") is None
