"""The control API and the `oneha-simulator` CLI, against real servers and a real process."""

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pyone
import pytest
import requests
from click.testing import CliRunner

from simulator.cli import main

from .conftest import client


def _post(url, op, body):
    req = urllib.request.Request(f"{url}/v1/{op}", data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_control_api_injects_and_reports(sim):
    url = sim.control_url
    assert _post(url, "crash_host", {"host_id": 1}) == \
        (200, {"ok": True, "operation": "crash_host", "result": None})
    sim.wait_for(lambda: sim.host(1)["state_name"] == "ERROR", 5)
    status, body = _post(url, "kill_leader", {})
    assert (status, body["result"]) == (200, 0)
    with urllib.request.urlopen(f"{url}/v1/state", timeout=5) as resp:
        state = json.load(resp)
    assert state["hosts"][1]["state_name"] == "ERROR"
    assert [s["alive"] for s in state["raft"]] == [False, True, True]
    assert state["endpoints"] == sim.endpoints


@pytest.mark.parametrize("op, body, status, fragment", [
    ("crash_host", {"host_id": 99}, 400, "no host with id 99"),
    ("crash_host", {"host_id": "1"}, 400, "'host_id' must be int"),
    ("crash_host", {}, 400, "missing argument 'host_id'"),
    ("fail_vm", {"vm_id": 1, "phase": "lunch"}, 400, "phase must be one of"),
    ("partition", {"host_ids": [0, "x"]}, 400, "list of integers"),
    ("crash_host", {"host_id": 1, "extra": 2}, 400, "unknown argument(s)"),
    ("explode", {}, 404, "unknown operation"),
])
def test_control_api_rejects_bad_requests(sim, op, body, status, fragment):
    got_status, payload = _post(sim.control_url, op, body)
    assert got_status == status
    assert set(payload) == {"error", "detail"}
    assert fragment in payload["error"] + payload["detail"]
    assert not sim.host(1)["crashed"]


def test_cli_injection_commands(sim):
    runner = CliRunner()
    result = runner.invoke(main, ["crash-host", "2", "--control", sim.control_url])
    assert result.exit_code == 0, result.output
    assert sim.host(2)["crashed"]
    result = runner.invoke(main, ["partition", "0", "1", "--control", sim.control_url])
    assert result.exit_code == 0 and sim.host(0)["crashed"] and sim.host(1)["crashed"]
    result = runner.invoke(main, ["fail-vm", "3", "--phase", "boot", "--control", sim.control_url])
    assert result.exit_code == 0 and sim.cloud.vms[3].fail_next == {"boot"}
    result = runner.invoke(main, ["lag-follower", "2", "30", "--control", sim.control_url])
    assert result.exit_code == 0
    assert sim.raft_status()[0]["LOG_INDEX"] - sim.raft_status()[2]["LOG_INDEX"] == 30
    result = runner.invoke(main, ["set-log-retention", "20", "--control", sim.control_url])
    assert result.exit_code == 0
    result = runner.invoke(main, ["reset-server", "2", "--control", sim.control_url])
    assert result.exit_code == 0
    assert sim.raft_status()[0]["LOG_INDEX"] == sim.raft_status()[2]["LOG_INDEX"]
    result = runner.invoke(main, ["heal", "0", "1", "2", "--control", sim.control_url])
    assert result.exit_code == 0 and not any(h["crashed"] for h in sim.hosts())
    result = runner.invoke(main, ["crash-host", "7", "--control", sim.control_url])
    assert result.exit_code != 0 and "no host with id 7" in result.output
    result = runner.invoke(main, ["kill-leader", "--control", "http://127.0.0.1:9"])
    assert result.exit_code != 0 and "cannot reach the simulator" in result.output


def test_serve_runs_until_sigterm(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator.cli", "serve", "--base-port", "0", "--control-port",
         "0", "--hosts", "2", "--vms", "3", "--frontends", "3", "--password", "pw"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(5)]
        endpoints = [line.split(": ", 1)[1] for line in lines if line.startswith("frontend")]
        assert len(endpoints) == 3
        assert "pw" not in "".join(lines)  # the password is not printed
        one = client(endpoints[2], "oneadmin:pw")
        assert len(one.vmpool.info(-2, -1, -1, -1).VM) == 3
        control = lines[-1].split(": ", 1)[1]
        assert _post(control, "crash_host", {"host_id": 0})[0] == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    with pytest.raises(requests.exceptions.ConnectionError):
        pyone.OneServer(endpoints[0], session="oneadmin:pw").system.version()


def test_stop_leaves_no_thread_or_process(make_sim):
    import threading

    import psutil

    def ours():  # other tests' children (e.g. Playwright's driver) are not the simulator's
        return [p for p in psutil.Process().children(recursive=True) if p.pid not in before]

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    sim = make_sim()
    one = client(sim.endpoints[0], sim.session)
    one.hook.allocate({"NAME": "slow", "TYPE": "state", "RESOURCE": "HOST", "STATE": "ERROR",
                       "COMMAND": "/bin/sleep 60"})
    sim.crash_host(0)
    sim.wait_for(ours, 5, message="hook running")
    sim.stop()
    assert ours() == []
    assert [t.name for t in threading.enumerate() if t.name.startswith("sim-")] == []
    with pytest.raises(requests.exceptions.ConnectionError):
        one.system.version()


def test_a_delayed_answer_comes_late_while_the_action_is_already_done(sim, one):
    import threading
    import time

    vm_id = next(v["id"] for v in sim.vms() if v["state_name"] == "ACTIVE")
    assert _post(sim.control_url, "delay_answers", {"method": "one.vm.action", "seconds": 1}) == \
        (200, {"ok": True, "operation": "delay_answers", "result": None})
    answered = threading.Event()
    t0 = time.monotonic()
    caller = threading.Thread(target=lambda: (one.vm.action("resched", vm_id), answered.set()))
    caller.start()
    sim.wait_for(lambda: any(e["method"] == "one.vm.action" for e in sim.action_log), 5)
    assert sim.vm(vm_id)["resched"] and not answered.is_set()  # done, not yet answered
    caller.join(5)
    assert answered.is_set() and time.monotonic() - t0 >= 1.0
    result = CliRunner().invoke(main, ["delay-answers", "one.vm.action", "0",
                                       "--control", sim.control_url])
    assert result.exit_code == 0, result.output
    t0 = time.monotonic()
    one.vm.action("unresched", vm_id)
    assert time.monotonic() - t0 < 0.5
    status, body = _post(sim.control_url, "delay_answers", {"method": "one.vm.explode",
                                                            "seconds": 1})
    assert status == 400 and "unknown method 'one.vm.explode'" in body["detail"]
