"""`oneha keys new FRONTEND` and `oneha hooks install --sender-config`: the key and the two
configurations they print or write agree — the real sender, configured by them, gets a 202 from
the real gateway configured by them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from gateway.cli import main as oneha_cli
from tests.hook.support import SENDER, fixture_b64
from tests.support.procs import oneha_serve

simulator = pytest.importorskip("simulator.core", reason="the simulator package is not there")
from simulator.spec import CloudSpec  # noqa: E402


def run_sender(conf_path, stdin: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEHA_")}
    env["ONEHA_HOOK_CONFIG"] = str(conf_path)
    return subprocess.run([sys.executable, str(SENDER)], input=stdin, capture_output=True,
                          text=True, env=env, timeout=30)


def local_sender_config(path, tmp_path):
    """The written file, with the spool and log moved from /var to the test's directory."""
    text = path.read_text()
    text = re.sub(r"(?m)^spool_dir *=.*$", f"spool_dir = {tmp_path / 'spool'}", text)
    text = re.sub(r"(?m)^log_file *=.*$", f"log_file = {tmp_path / 'hook.log'}", text)
    path.write_text(text)
    return path


def test_a_new_key_configures_both_sides(redis_url, key_prefix, tmp_path):
    gw_config = tmp_path / "oneha.yaml"
    gw_config.write_text(yaml.safe_dump({"redis_url": redis_url, "key_prefix": key_prefix}))
    sender_conf = tmp_path / "etc" / "oneha-hook.conf"
    made = CliRunner().invoke(oneha_cli, ["-c", str(gw_config), "keys", "new", "fe9",
                                          "--url", "http://127.0.0.1:1", "--url",
                                          "http://127.0.0.1:2", "--write-sender-config",
                                          str(sender_conf)])
    assert made.exit_code == 0, made.output
    key = re.search(r"^key for front-end fe9: (\S+)$", made.output, re.M).group(1)
    assert len(key) >= 43 and f'keys: ["{key}"]' in made.output
    assert f"ONEHA_FRONTEND_FE9_KEYS={key}" in made.output
    assert oct(sender_conf.stat().st_mode & 0o777) == "0o600"
    conf = dict(re.findall(r"(?m)^(\w+) *= *(.*)$", sender_conf.read_text()))
    assert conf["key"] == key and conf["frontend"] == "fe9"
    assert conf["urls"] == "http://127.0.0.1:1, http://127.0.0.1:2"
    again = CliRunner().invoke(oneha_cli, ["-c", str(gw_config), "keys", "new", "fe9"])
    assert re.search(r"^key for front-end fe9: (\S+)$", again.output, re.M).group(1) != key

    # Both sides as printed: the gateway with the key, the sender with the file.
    gw_config.write_text(yaml.safe_dump({"redis_url": redis_url, "key_prefix": key_prefix,
                                         "ingest": {"frontends": {"fe9": {"keys": [key]}}}}))
    with oneha_serve(gw_config) as port:
        text = sender_conf.read_text().replace("http://127.0.0.1:1, http://127.0.0.1:2",
                                               f"http://127.0.0.1:{port}")
        sender_conf.write_text(text)
        sent = run_sender(local_sender_config(sender_conf, tmp_path), fixture_b64("host-error.xml"))
    assert sent.returncode == 0, sent.stderr
    assert not list((tmp_path / "spool").glob("*.json")), "refused or not delivered: spooled"
    assert f"accepted by http://127.0.0.1:{port}" in (tmp_path / "hook.log").read_text()


@pytest.mark.parametrize("args, message", [
    (["keys", "new", "fe 1"], "front-end name"),
    (["keys", "new", "fe1", "--url", "ftp://x"], "http(s)://"),
])
def test_bad_input_is_a_clear_usage_error(args, message):
    result = CliRunner().invoke(oneha_cli, args)
    assert result.exit_code == 2 and message in result.output


def test_hooks_install_writes_the_sender_config_too(tmp_path):
    with simulator.Simulator(CloudSpec(hosts=1, vms=1, frontends=1), control_port=None) as sim:
        config = tmp_path / "oneha.yaml"
        config.write_text(json.dumps({
            "opennebula": {"endpoints": sim.endpoints, "session": sim.session},
            "public_url": "https://oneha.example.org",
            "ingest": {"frontends": {"fe1": {"keys": ["fe1-first-key-123456", "old-key-999999"]}}}}))
        target = tmp_path / "one" / "oneha-hook.conf"
        cli = CliRunner()
        unknown = cli.invoke(oneha_cli, ["-c", str(config), "hooks", "install", "--sender-config",
                                         str(target), "--frontend", "fe7"])
        assert unknown.exit_code == 1 and "fe7" in unknown.output and "fe1" in unknown.output
        assert not target.exists()
        done = cli.invoke(oneha_cli, ["-c", str(config), "hooks", "install", "--sender-config",
                                      str(target), "--frontend", "fe1"])
        assert done.exit_code == 0, done.output
        assert f"wrote {target} (0600) for front-end fe1" in done.output and "hook(s)" in done.output
    conf = dict(re.findall(r"(?m)^(\w+) *= *(.*)$", target.read_text()))
    assert (conf["key"], conf["frontend"], conf["urls"]) == (
        "fe1-first-key-123456", "fe1", "https://oneha.example.org")
    assert oct(target.stat().st_mode & 0o777) == "0o600"
