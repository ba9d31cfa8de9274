"""`oneha send-test` against a real SMTP server and a real chat webhook; the read commands
`oneha notifications failed|log` against records written by the real delivery code."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import load_settings
from gateway.domain.notifications import Notification
from gateway.runtime import Runtime
from gateway.flows.delivery import deliver_round

ROOT = Path(__file__).parents[2]
SECRET = "t0kenThatMustNotShow"


def write_config(path: Path, **data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def oneha(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin"})


def test_send_test_reaches_every_url_and_prints_masked_results(tmp_path, smtp_sink, chat_sink):
    cfg = write_config(tmp_path / "c.yaml", receivers=[
        {"name": "ops", "urls": [smtp_sink.url(to="ops@example.com"),
                                 chat_sink.url() + f"?+Authorization={SECRET}"]},
        {"name": "dba", "urls": [chat_sink.url("dba")]}])
    res = oneha(cfg, "send-test")
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert [line.split()[:3] for line in lines[:3]] == [["OK", "ops", "mail"], ["OK", "ops", "chat"],
                                                        ["OK", "dba", "chat"]]
    assert lines[-1] == "3 of 3 URL(s) delivered"
    assert SECRET not in res.stdout + res.stderr and "Authorization=****" in res.stdout
    [mail] = smtp_sink.wait_for(1)
    assert mail.subject == "[TEST] oneha test notification"
    assert "test message from oneha to receiver ops" in mail.text
    posts = chat_sink.wait_for(2)
    assert sorted(p.path for p in posts) == ["/dba", "/hook"]
    assert {p.title for p in posts} == {"[TEST] oneha test notification"}
    assert [p.headers["Authorization"] for p in posts if p.path == "/hook"] == [SECRET]


def test_send_test_exits_1_and_says_why_when_a_url_fails(tmp_path, smtp_sink, chat_sink):
    cfg = write_config(tmp_path / "c.yaml", receivers=[
        {"name": "ops", "urls": [smtp_sink.url(), chat_sink.url(), "nosuchscheme://abc"]}])
    chat_sink.fail_next(1, status=502)
    res = oneha(cfg, "send-test", "--receiver", "ops")
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout
    assert out.splitlines()[0].startswith("OK      ops  mail")
    assert "FAILED  ops  chat" in out and "error=502" in out
    assert "FAILED  ops  chat" in out.split("nosuchscheme://****")[0].splitlines()[-1]
    assert "INVALID_URL (permanent)" in out
    assert out.splitlines()[-1] == "1 of 3 URL(s) delivered"
    assert len(smtp_sink.wait_for(1)) == 1


def test_send_test_refuses_an_unknown_receiver_and_an_empty_configuration(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", receivers=[{"name": "ops", "urls": ["json://x/y"]}])
    res = oneha(cfg, "send-test", "-r", "nobody")
    assert res.returncode == 1 and "no receiver named nobody" in res.stderr
    empty = write_config(tmp_path / "e.yaml")
    res = oneha(empty, "send-test")
    assert res.returncode == 1 and "no receivers configured" in res.stderr


def test_failed_and_log_commands_show_dead_letters_and_attempts(tmp_path, redis_url, key_prefix,
                                                                smtp_sink, chat_sink):
    cfg = write_config(tmp_path / "c.yaml", redis_url=redis_url, key_prefix=key_prefix,
                       receivers=[{"name": "ops", "urls": [
                           smtp_sink.url(), chat_sink.url() + f"?+X-Key={SECRET}"]}],
                       notify={"max_attempts": 1})
    rt = Runtime.from_settings(load_settings(cfg, env={}))
    n = Notification("inc-9:firing:1:ops", "ops", "firing",
                     {"id": "inc-9", "title": "VM db-1 is in UNKNOWN"}, time.time())
    chat_sink.fail_next(1, status=500)
    assert deliver_round(rt, n).status == "failed"
    runner = CliRunner()

    res = runner.invoke(main, ["-c", str(cfg), "notifications", "failed"])
    assert res.exit_code == 0, res.output
    assert "inc-9:firing:1:ops  receiver=ops  attempts=1" in res.output
    assert "VM db-1 is in UNKNOWN" in res.output and "error=500" in res.output
    assert res.output.splitlines()[-1] == "1 failed delivery"

    res = runner.invoke(main, ["-c", str(cfg), "notifications", "log"])
    assert res.exit_code == 0 and "failed    inc-9:firing:1:ops  VM db-1 is in UNKNOWN" in res.output

    res = runner.invoke(main, ["-c", str(cfg), "notifications", "log", "inc-9:firing:1:ops"])
    assert res.exit_code == 0, res.output
    assert "status:     failed" in res.output
    assert res.output.count(": sent after 1 attempt(s)") == 1
    assert res.output.count(": dead after 1 attempt(s)") == 1
    assert SECRET not in res.output and "X-Key=****" in res.output

    res = runner.invoke(main, ["-c", str(cfg), "notifications", "log", "nope"])
    assert res.exit_code == 1 and "no notification 'nope' recorded" in res.output

    res = runner.invoke(main, ["-c", str(cfg), "notifications", "dismiss", "inc-9:firing:1:ops"])
    assert res.exit_code == 0 and "dismissed 1 dead letter(s)" in res.output
    res = runner.invoke(main, ["-c", str(cfg), "notifications", "failed"])
    assert res.output == "no failed deliveries\n"
