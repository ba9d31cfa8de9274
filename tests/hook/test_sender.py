"""The hook sender as oned runs it: a subprocess with real host/VM XML, against real sockets."""

from __future__ import annotations

import fcntl
import json
import re
import time
import urllib.request

import pytest

from tests.hook.support import (SENDER, BlackHole, HookRunner, Receiver, closed_port_url,
                                expected_signature, fixture_b64)

HOST = fixture_b64("host-error.xml")
VM = fixture_b64("vm-unknown.xml")


@pytest.fixture
def hook(tmp_path):
    return HookRunner(tmp_path)


def test_host_error_on_stdin_is_signed_posted_and_accepted(hook):
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        # oned writes the ARGUMENTS to stdin; extra tokens (like host_error.rb's "-m -p 5") are allowed
        result = hook.run(stdin=HOST + " -m -p 5\n")
    assert result.returncode == 0, result.stderr
    assert gw.verdicts() == ["accepted"]
    event = gw.accepted[0]
    assert {k: event[k] for k in ("resource", "id", "name", "state", "lcm_state", "state_name",
                                  "lcm_state_name", "hook", "frontend")} == {
        "resource": "HOST", "id": 7, "name": "node07", "state": 3, "lcm_state": None,
        "state_name": "ERROR", "lcm_state_name": None, "hook": "oneha-host-error",
        "frontend": "fe1"}
    assert event["xml"] == HOST
    assert re.fullmatch(r"[0-9a-f]{32}", event["event_id"])
    assert abs(event["sent_at"] - time.time()) < 60
    assert hook.spooled() == [] and hook.rejected() == []
    assert "accepted by" in result.stderr and "HOST 7 ERROR" in hook.log()


def test_vm_unknown_as_argument_with_explicit_hook_name(hook):
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        result = hook.run(VM, "--hook", "oneha-vm-unknown-custom")
    assert result.returncode == 0, result.stderr
    [event] = gw.accepted
    assert (event["resource"], event["id"], event["name"]) == ("VM", 42, "web-42")
    assert (event["state"], event["lcm_state"]) == (3, 16)
    assert (event["state_name"], event["lcm_state_name"]) == ("ACTIVE", "UNKNOWN")
    assert event["hook"] == "oneha-vm-unknown-custom"
    headers = gw.requests[0]["headers"]
    assert headers["X-OneHA-Frontend"] == "fe1"
    assert headers["X-OneHA-Signature"] == expected_signature(
        "s3cret", headers["X-OneHA-Timestamp"], gw.requests[0]["body"])


def test_failure_state_vm_gets_the_failure_hook_name(hook):
    failed = fixture_b64("vm-unknown.xml", **{"<LCM_STATE>16<": "<LCM_STATE>36<"})
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        assert hook.run(stdin=failed).returncode == 0
    [event] = gw.accepted
    assert (event["lcm_state_name"], event["hook"]) == ("BOOT_FAILURE", "oneha-vm-boot-failure")


def test_urls_are_tried_in_order_until_one_accepts(hook):
    with Receiver() as gw:
        hook.configure(urls=f"{closed_port_url()}, {gw.url}/")
        result = hook.run(stdin=HOST)
    assert result.returncode == 0
    assert gw.verdicts() == ["accepted"]
    assert hook.spooled() == []


def test_environment_overrides_the_config_file(hook):
    with Receiver(key="from-env") as gw:
        hook.configure(urls=closed_port_url(), key="from-file")
        env = hook.env()
        env.update(ONEHA_URLS=gw.url, ONEHA_KEY="from-env")
        assert hook.run(stdin=HOST, env=env).returncode == 0
    assert gw.verdicts() == ["accepted"]


def test_black_hole_gateway_bounds_the_run_and_spools(hook):
    with BlackHole() as hole:
        hook.configure(urls=hole.url, timeout="1")
        started = time.monotonic()
        result = hook.run(stdin=VM)
        elapsed = time.monotonic() - started
    assert result.returncode == 0
    # the bound is the sender's contract with oned; slack covers interpreter start on a busy box
    assert elapsed < 1 + 2, elapsed
    [spooled] = hook.spooled()
    assert json.loads(spooled.read_bytes())["xml"] == VM
    assert "no answer within" in hook.log()


def test_black_hole_first_still_leaves_time_for_the_next_url(hook):
    with BlackHole() as hole, Receiver() as gw:
        hook.configure(urls=f"{hole.url},{gw.url}", timeout="2")
        result = hook.run(stdin=VM)
    assert result.returncode == 0
    assert gw.verdicts() == ["accepted"]
    assert hook.spooled() == []


@pytest.mark.parametrize("status", [500, 503, 408, 429])
def test_transient_answers_spool_instead_of_rejecting(hook, status):
    with Receiver(script=[status]) as gw:
        hook.configure(urls=gw.url)
        assert hook.run(stdin=HOST).returncode == 0
    assert len(hook.spooled()) == 1 and hook.rejected() == []
    assert f"HTTP {status}" in hook.log()


def test_spool_is_written_whole_and_flush_delivers_it_exactly_once(hook):
    hook.configure(urls=closed_port_url())
    assert hook.run(stdin=HOST).returncode == 0
    assert hook.run(stdin=HOST).returncode == 0  # the hook fired twice: still one spooled copy
    [spooled] = hook.spooled()
    body = spooled.read_bytes()
    assert not [p for p in hook.spool.iterdir() if p.name.startswith(".tmp")]
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        first = hook.run("--flush")
        second = hook.run("--flush")
    assert (first.returncode, second.returncode) == (0, 0)
    assert gw.verdicts() == ["accepted"]
    assert gw.requests[0]["body"] == body  # replayed byte for byte, freshly signed
    assert hook.spooled() == []


def test_flush_goes_oldest_first_stops_at_first_failure_and_keeps_the_rest(hook):
    hook.configure(urls=closed_port_url())
    for vm_id in (101, 102, 103):
        xml = fixture_b64("vm-unknown.xml", **{"<VM><ID>42<": f"<VM><ID>{vm_id}<"})
        assert hook.run(stdin=xml).returncode == 0
    assert len(hook.spooled()) == 3
    with Receiver(script=[202, 503]) as gw:
        hook.configure(urls=gw.url)
        stopped = hook.run("--flush")
        assert stopped.returncode == 75
        assert [e["id"] for e in gw.accepted] == [101]
        assert len(hook.spooled()) == 2  # the 503 one and the untried one stay
        assert hook.run("--flush").returncode == 0
    assert [e["id"] for e in gw.accepted] == [101, 102, 103]
    assert gw.verdicts() == ["accepted", "scripted 503", "accepted", "accepted"]
    assert hook.spooled() == []


def test_flush_deletes_an_event_the_gateway_already_had(hook):
    """The answer was lost after the gateway recorded it: the replay is a duplicate 202."""
    with BlackHole() as hole:
        hook.configure(urls=hole.url, timeout="0.5")
        assert hook.run(stdin=VM).returncode == 0
    [spooled] = hook.spooled()
    body = spooled.read_bytes()
    with Receiver() as gw:
        ts = str(int(time.time()))
        request = urllib.request.Request(
            gw.url + "/v1/events", data=body, method="POST",
            headers={"X-OneHA-Timestamp": ts, "X-OneHA-Frontend": "fe1",
                     "X-OneHA-Signature": expected_signature("s3cret", ts, body)})
        assert urllib.request.urlopen(request, timeout=5).status == 202
        hook.configure(urls=gw.url)
        assert hook.run("--flush").returncode == 0
    assert gw.verdicts() == ["accepted", "duplicate"]
    assert hook.spooled() == []


def test_rejected_event_is_kept_with_the_reason_and_can_be_requeued(hook):
    with Receiver(key="the-gateways-key") as gw:
        hook.configure(urls=gw.url, key="a-wrong-key")
        result = hook.run(stdin=HOST)
        assert result.returncode == 0
        assert gw.verdicts() == ["bad signature"]
        assert hook.spooled() == []
        [rejected] = hook.rejected()
        record = json.loads(rejected.read_text())
        assert record["status"] == 401 and "bad_signature" in record["reason"]
        assert json.loads(record["body"])["xml"] == HOST
        assert "rejected" in hook.log()
        # the operator fixes the key, puts the event back and flushes
        hook.configure(key="the-gateways-key")
        assert hook.run("--requeue").returncode == 0
        assert hook.rejected() == [] and len(hook.spooled()) == 1
        assert hook.run("--flush").returncode == 0
    assert gw.verdicts() == ["bad signature", "accepted"]
    assert hook.spooled() == []


def test_flush_moves_an_event_refused_on_replay_to_rejected(hook):
    hook.configure(urls=closed_port_url())
    assert hook.run(stdin=HOST).returncode == 0
    with Receiver(script=[422]) as gw:
        hook.configure(urls=gw.url)
        assert hook.run("--flush").returncode == 0
    assert hook.spooled() == []
    [rejected] = hook.rejected()
    assert json.loads(rejected.read_text())["status"] == 422


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  '<HOST><ID>1</ID><NAME>&lol2;</NAME><STATE>3</STATE></HOST>')
XXE = ('<!DOCTYPE HOST [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       '<HOST><ID>1</ID><NAME>&xxe;</NAME><STATE>3</STATE></HOST>')


@pytest.mark.parametrize("payload, reason", [
    (BILLION_LAUGHS, "DTD or entity"),
    (XXE, "DTD or entity"),
    ("<HOST><ID>1</ID><NAME>x</NAME><STATE>3</STATE>", "not well-formed"),
    ("<IMAGE><ID>1</ID></IMAGE>", "expected a <HOST> or <VM>"),
    ("<HOST><ID>one</ID><STATE>3</STATE></HOST>", "<ID> is missing or not an integer"),
    (None, "not base64"),
])
def test_bad_input_is_refused_logged_and_kept_without_a_crash(hook, payload, reason):
    import base64
    token = base64.b64encode(payload.encode()).decode() if payload else "%%%not-base64%%%"
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        result = hook.run(stdin=token)
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    assert gw.requests == []  # nothing reached the gateway
    assert reason in hook.log()
    [kept] = hook.rejected()
    record = json.loads(kept.read_text())
    assert reason in record["reason"] and record["input"] == token


def test_empty_input_is_logged_and_exits_zero(hook):
    result = hook.run(stdin="")
    assert result.returncode == 0 and "no input" in result.stderr


def test_missing_key_spools_instead_of_sending_unsigned(hook):
    with Receiver() as gw:
        hook.configure(urls=gw.url, key="")
        assert hook.run(stdin=HOST).returncode == 0
    assert gw.requests == []
    assert len(hook.spooled()) == 1 and "no key configured" in hook.log()


def test_a_second_flush_leaves_the_spool_to_the_one_holding_the_lock(hook):
    hook.configure(urls=closed_port_url())
    assert hook.run(stdin=HOST).returncode == 0
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        with open(hook.spool / ".flush.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            result = hook.run("--flush")
        assert result.returncode == 0 and "another flush is running" in result.stderr
        assert gw.requests == [] and len(hook.spooled()) == 1


def test_a_successful_send_replays_the_spool_in_the_background(hook):
    hook.configure(urls=closed_port_url())
    assert hook.run(stdin=HOST).returncode == 0
    with Receiver() as gw:
        hook.configure(urls=gw.url, auto_flush="yes")
        assert hook.run(stdin=VM).returncode == 0
        deadline = time.monotonic() + 20
        while hook.spooled() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hook.spooled() == []
        assert sorted(e["resource"] for e in gw.accepted) == ["HOST", "VM"]


def test_help_and_version(hook):
    help_ = hook.run("--help")
    assert help_.returncode == 0 and "--flush" in help_.stdout and "ONEHA_URLS" in help_.stdout
    version = hook.run("--version")
    assert version.returncode == 0 and re.fullmatch(r"oneha-hook \d+\.\d+\.\d+\n", version.stdout)
    assert hook.run("--bogus").returncode == 2


def test_runs_as_an_executable_like_oned_starts_it(hook):
    import subprocess
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        result = subprocess.run([str(SENDER)], input=HOST, capture_output=True, text=True,
                                env=hook.env(), timeout=30)
    assert result.returncode == 0, result.stderr
    assert gw.verdicts() == ["accepted"]


def test_an_event_that_cannot_be_kept_anywhere_fails_the_run_for_onehook_retry(hook, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    hook.configure(urls=closed_port_url(), spool_dir=str(blocker / "spool"))
    result = hook.run(stdin=HOST)
    assert result.returncode == 1  # oned records a failed run; `onehook retry` replays it
    assert "NOT delivered" in result.stderr and "NOT spooled" in result.stderr


def _other_pythons() -> list:
    """Front-ends run whatever python3 their distribution has: try the ones this machine has."""
    import glob
    import shutil
    found = {}
    for pattern in ("/root/.pyenv/versions/3.*/bin/python3", "/usr/bin/python3.*[0-9]",
                    "/usr/local/bin/python3.*[0-9]"):
        for path in sorted(glob.glob(pattern)):
            match = re.search(r"versions/(3\.\d+)|python(3\.\d+)$", path)
            if match:
                found.setdefault(match.group(1) or match.group(2), path)
    if not found and shutil.which("python3"):
        found["python3"] = shutil.which("python3")
    picks = [v for v in ("3.6", "3.8", "3.12", "3.13") if v in found]
    return [pytest.param(found[v], id=v) for v in picks] or [
        pytest.param(None, marks=pytest.mark.skip(reason="no other Python 3 interpreters here; "
                                                         "the syntax test still checks 3.6"))]


@pytest.mark.parametrize("python", _other_pythons())
def test_sender_works_on_other_python_versions(hook, python):
    hook.configure(urls=closed_port_url())
    assert hook.run(stdin=VM, python=python).returncode == 0
    assert len(hook.spooled()) == 1
    with Receiver() as gw:
        hook.configure(urls=gw.url)
        assert hook.run(stdin=HOST, python=python).returncode == 0
        assert hook.run("--flush", python=python).returncode == 0
    assert gw.verdicts() == ["accepted", "accepted"]  # signatures verified by the receiver
    assert hook.spooled() == []
