"""The plugin process as Terraform and people meet it: the handshake guard, debug/reattach mode,
logs in the format Terraform reads, and no secrets in them."""
import json
import os
import re
import shutil
import signal
import subprocess

from conftest import PROVIDER_BIN, REPO, plan_summary

COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


def test_refuses_to_run_without_the_magic_cookie():
    p = subprocess.run([str(PROVIDER_BIN)], capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if k != "TF_PLUGIN_MAGIC_COOKIE"})
    assert p.returncode == 1
    assert "This binary is a plugin" in p.stderr
    assert p.stdout == ""


def test_refuses_protocol_five_only():
    env = dict(os.environ, TF_PLUGIN_MAGIC_COOKIE=COOKIE, PLUGIN_PROTOCOL_VERSIONS="5")
    p = subprocess.run([str(PROVIDER_BIN)], capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 1 and "version 6" in p.stderr


def test_handshake_line_and_prompt_exit(tmp_path):
    env = dict(os.environ, TF_PLUGIN_MAGIC_COOKIE=COOKIE, PLUGIN_PROTOCOL_VERSIONS="5,6",
               PLUGIN_MIN_PORT="20000", PLUGIN_MAX_PORT="20100")
    p = subprocess.Popen([str(PROVIDER_BIN)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        line = p.stdout.readline().decode()
        assert re.fullmatch(r"1\|6\|tcp\|127\.0\.0\.1:(\d+)\|grpc\n", line), line
        assert 20000 <= int(line.split("|")[3].split(":")[1]) <= 20100
    finally:
        p.kill()
        p.wait()


def test_debug_mode_attaches_terraform_through_reattach(tmp_path, cli):
    """`--debug` prints a TF_REATTACH_PROVIDERS value that attaches Terraform and OpenTofu alike."""
    proc = subprocess.Popen([str(PROVIDER_BIN), "--debug"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        reattach = None
        for _ in range(10):
            line = proc.stdout.readline()
            m = re.search(r"TF_REATTACH_PROVIDERS='(.*)'", line)
            if m:
                reattach = m.group(1)
                break
        assert reattach, "debug mode printed no TF_REATTACH_PROVIDERS"
        # No hostname in the key: each CLI fills in its own default registry.
        providers = json.loads(reattach)
        assert list(providers) == ["paved/paved"], providers
        cfg = providers["paved/paved"]
        assert cfg["Test"] is True and cfg["ProtocolVersion"] == 6
        shutil.copytree(REPO / "examples" / "gpu_compute_pool", tmp_path / "ex")
        # A real CLI config without dev_overrides: the provider can only come from the reattach.
        rc = tmp_path / "empty.tfrc"
        rc.write_text("")
        env = dict(os.environ, TF_REATTACH_PROVIDERS=reattach, CHECKPOINT_DISABLE="1", TF_CLI_CONFIG_FILE=str(rc))
        p = subprocess.run([cli.path, "plan", "-no-color", "-var", "aws_endpoint=http://127.0.0.1:9"],
                           cwd=tmp_path / "ex", env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert plan_summary(p.stdout) == (1, 0, 0), p.stdout
        assert proc.poll() is None, f"{cli.name} must not stop a debug-mode provider"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def test_logs_are_hclog_json_and_never_hold_secrets(tmp_path, cli):
    secret = "s3cr3t-Zq8v-never-log-me"
    shutil.copytree(REPO / "examples" / "gpu_compute_pool", tmp_path / "ex")
    main = tmp_path / "ex" / "main.tf"
    main.write_text(main.read_text().replace('secret_key = "test"', f'secret_key = "{secret}"'))
    log = tmp_path / "tf.log"
    tf = cli.runner(tmp_path / "ex", extra_env={"TF_LOG_PROVIDER": "TRACE", "TF_LOG_PATH": str(log)})
    tf.apply("-var", "desired=1")
    tf.run("destroy", "-auto-approve", "-var", "desired=1")
    text = log.read_text()
    assert secret not in text
    provider_lines = [l for l in text.splitlines() if "provider.terraform-provider-paved" in l]
    assert provider_lines, "no provider log lines reached Terraform"
    assert any("launching instances" in l for l in provider_lines)
    # Terraform parsed our JSON (it re-renders it with the module name and our fields).
    assert any("rpc=ApplyResourceChange" in l for l in provider_lines), provider_lines[:5]


def test_data_source_reads_the_catalog_with_price_overrides(example):
    tf = example("gpu_instance_types")
    tf.apply()
    cheapest = tf.output("cheapest")
    assert cheapest == {"name": "g5.xlarge", "accelerator": "nvidia-a10g", "gpus": 1, "hourly_usd": 0.35}
    assert tf.plan_exitcode()[0] == 0
    code, out = tf.run("plan", "-var", "accelerator=nvidia-b9000", check=False)
    assert code == 1 and "Unknown accelerator type" in out and "accelerator   = var.accelerator" in out, out
