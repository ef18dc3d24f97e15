"""Every number, duration, size and length a user writes is bounded by a documented platform
limit and checked at validate time with the attribute path: no input can panic the provider,
overflow a deadline or plan 10^15 instances (issue 10, "Engine hardening").

Each case is a real `terraform validate` of a small configuration, built with the helpers of
test_bad_configs.py. The first three are the issue's own reproductions: before the limits,
`timeouts { create = "5124095576030432h" }` crashed validation (debug-build overflow in the
duration parser), `rollout { timeout = "18446744073709551615s" }` passed validation and panicked
at apply (`Instant + Duration` overflow), and `nodes { max = 1e15, desired = 1e15 }` planned
10^15 instances."""
import pytest

from test_bad_configs import PROVIDER, endpoint, fstore, pool, vdb

NODES = "nodes {{\n    min = {min}\n    max = {max}\n    desired = {desired}\n  }}"

CASES = [
    # (id, resource HCL, expected summary, text Terraform shows from the named source line)
    ("feature-store-timeout-overflow", fstore('timeouts {\n    create = "5124095576030432h"\n  }'),
     "Duration too long", 'create = "5124095576030432h"'),
    ("rollout-timeout-u64-max", endpoint('rollout {\n    timeout = "18446744073709551615s"\n  }'),
     "Duration too long", 'timeout = "18446744073709551615s"'),
    ("nodes-1e15", pool(_nodes=NODES.format(min=0, max="1e15", desired="1e15")),
     "Number out of range", "max = 1e15"),
    ("pool-timeout-25h", pool(_nodes=NODES.format(min=1, max=3, desired=2) + '\n  timeouts {\n    create = "25h"\n  }'),
     "Duration too long", 'create = "25h"'),
    ("startup-timeout-overflow", endpoint('health {\n    startup_timeout = "99999999999999999999h"\n  }'),
     "Duration too long", 'startup_timeout = "99999999999999999999h"'),
    ("nodes-1001", pool(_nodes=NODES.format(min=0, max=1001, desired=1)),
     "Number out of range", "max = 1001"),
    ("nodes-fraction", pool(_nodes=NODES.format(min=0, max=3, desired=1.5)),
     "Not a whole number", "desired = 1.5"),
    ("nodes-negative", pool(_nodes=NODES.format(min=-1, max=3, desired=1)),
     "Number out of range", "min = -1"),
    ("nodes-beyond-i64", pool(_nodes=NODES.format(min=0, max="99999999999999999999", desired=1)),
     "Number out of range", "max = 99999999999999999999"),
    ("accelerator-count-huge", pool(_accel='accelerator {\n    type = "nvidia-a10g"\n    count = 1e30\n  }'),
     "Number out of range", "count = 1e30"),
    ("tag-value-too-long", pool(tags='{ note = "%s" }' % ("x" * 300)), "Value too long", "tags = {"),
    ("dimension-1e30", vdb('engine = "qdrant"', 'collection {\n    name = "docs"\n    dimension = 1e30\n  }'),
     "Number out of range", "dimension = 1e30"),
    ("dimension-fraction", vdb('engine = "qdrant"', 'collection {\n    name = "docs"\n    dimension = 7.5\n  }'),
     "Not a whole number", "dimension = 7.5"),
    ("storage-size-overflow", vdb('engine = "qdrant"', 'storage {\n    size = "99999999999999999999Ti"\n  }'),
     "Size too large", 'size = "99999999999999999999Ti"'),
    ("storage-size-65Ti", vdb('engine = "qdrant"', 'storage {\n    size = "65Ti"\n  }'),
     "Size too large", 'size = "65Ti"'),
    ("vdb-replicas-huge", vdb('engine = "qdrant"', "replicas = 1e12"), "Number out of range", "replicas = 1e12"),
    ("feature-server-replicas", fstore("feature_server {\n    replicas = 5000\n  }"),
     "Number out of range", "replicas = 5000"),
    ("endpoint-replicas", endpoint("autoscaling {\n    min_replicas = 2\n    max_replicas = 1e9\n  }"),
     "Number out of range", "max_replicas = 1e9"),
    ("canary-weight-fraction", endpoint('autoscaling {\n    min_replicas = 2\n  }',
                                        'canary {\n    version = "v2"\n    traffic_percent = 12.5\n  }'),
     "Not a whole number", "traffic_percent = 12.5"),
    ("canary-weight-over-100", endpoint('autoscaling {\n    min_replicas = 2\n  }',
                                        'canary {\n    version = "v2"\n    traffic_percent = 1e20\n  }'),
     "Number out of range", "traffic_percent = 1e20"),
    ("cpu-target-negative", endpoint("autoscaling {\n    target_cpu_utilization = -5\n  }"),
     "Number out of range", "target_cpu_utilization = -5"),
    ("gpus-per-replica", endpoint("resources {\n    gpus = 1000\n  }"), "Number out of range", "gpus = 1000"),
    ("port-huge", endpoint("runtime {\n    image = \"srv:1\"\n    port = 1e6\n  }"), "Number out of range", "port = 1e6"),
    ("model-uri-too-long", endpoint(), "Value too long", "uri"),
]


def _hcl(case_id, hcl):
    if case_id == "model-uri-too-long":
        hcl = hcl.replace('uri = "s3://m/llm"', 'uri = "s3://m/%s"' % ("a" * 3000))
    if case_id == "port-huge":
        # The helper's runtime block is replaced by the case's own.
        hcl = hcl.replace('  runtime {\n    image = "srv:1"\n  }\n', "", 1)
    return hcl


@pytest.mark.parametrize("case_id,hcl,summary,line", CASES, ids=[c[0] for c in CASES])
def test_limits_are_checked_at_validate(tmp_path, cli, case_id, hcl, summary, line):
    (tmp_path / "main.tf").write_text(PROVIDER % "" + _hcl(case_id, hcl))
    tf = cli.runner(tmp_path)
    code, out = tf.run("validate", check=False)  # run() also fails on any panic or crash
    assert code == 1, out
    assert summary in out, out
    assert line in out, out
    # The message names the limit, so the user knows what to write instead.
    assert any(w in out for w in ("24h", "..", "limit", "whole number")), out


def test_values_at_the_limits_are_accepted(tmp_path, cli):
    hcl = (pool(_nodes=NODES.format(min=0, max=1000, desired=1000) + '\n  timeouts {\n    create = "24h"\n  }')
           + vdb('engine = "qdrant"', "replicas = 1000", 'storage {\n    size = "64Ti"\n  }',
                 'collection {\n    name = "docs"\n    dimension = 65536\n  }')
           + endpoint('rollout {\n    timeout = "24h"\n  }', "autoscaling {\n    max_replicas = 1000\n  }"))
    (tmp_path / "main.tf").write_text(PROVIDER % "" + hcl)
    tf = cli.runner(tmp_path)
    code, out = tf.run("validate", check=False)
    assert code == 0, out
