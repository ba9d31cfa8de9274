"""The simulator's hook manager as the drill needs it: `one.hook.update` (merge/replace), an API
hook on it, run by the hook manager of the front-end that served the call — with that
front-end's own environment — and state hooks run by the leader's."""

import base64
import stat

import pytest

from tests.simulator.conftest import client


def _script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def leader_id(sim):
    return next(s["SERVER_ID"] for s in sim.raft_status() if s["state_name"] == "LEADER")


def test_hook_update_merges_or_replaces_and_keeps_the_hook_valid(sim, one):
    hid = one.hook.allocate({"NAME": "d", "TYPE": "api", "CALL": "one.hook.update",
                             "COMMAND": "/bin/true"})
    one.hook.update(hid, 'ONEHA_DRILL = "abc"', 1)
    assert sim.cloud.hooks[hid].template["ONEHA_DRILL"] == "abc"
    assert sim.cloud.hooks[hid].template["COMMAND"] == "/bin/true"
    with pytest.raises(Exception, match="CALL attribute is not defined"):
        one.hook.update(hid, 'COMMAND = "/bin/false"', 0)
    one.hook.update(hid, 'CALL = "one.hook.update"\nCOMMAND = "/bin/false"', 0)
    assert sim.cloud.hooks[hid].template == {"CALL": "one.hook.update", "COMMAND": "/bin/false"}


def test_an_api_hook_runs_on_the_front_end_that_served_the_call_with_its_environment(
        sim, tmp_path):
    out = tmp_path / "ran"
    script = _script(tmp_path, "who.sh", f'echo "$WHO $(cat)" >> {out}\n')
    for sid in range(len(sim.frontends)):
        sim.set_frontend_env(sid, {"WHO": f"fe{sid}"})
    lead = leader_id(sim)
    one = client(sim.endpoints[lead], sim.session)
    hid = one.hook.allocate({"NAME": "drill", "TYPE": "api", "CALL": "one.hook.update",
                             "COMMAND": str(script), "ARGUMENTS": "--drill $API",
                             "ARGUMENTS_STDIN": "yes"})
    one.hook.update(hid, 'ONEHA_DRILL = "0123456789abcdef"', 1)
    sim.wait_for(lambda: sim.hook_executions, 5)
    assert sim.wait_hooks_idle(5)
    (line,) = out.read_text().splitlines()
    who, flag, payload = line.split(" ")
    assert (who, flag) == (f"fe{lead}", "--drill")
    assert "ONEHA_DRILL" in base64.b64decode(payload).decode()
    assert [e["server_id"] for e in sim.hook_executions] == [lead]
    # A follower serves the same write by proxying it: both raise the event (Request.cc).
    follower = next(i for i in range(len(sim.frontends)) if i != lead)
    client(sim.endpoints[follower], sim.session).hook.update(hid, 'ONEHA_DRILL = "1"', 1)
    sim.wait_for(lambda: len(sim.hook_executions) == 3, 5)
    assert sorted(e["server_id"] for e in sim.hook_executions[1:]) == sorted([lead, follower])


def test_state_hooks_run_on_the_leader_also_after_the_leader_changes(sim, one, tmp_path):
    out = tmp_path / "ran"
    script = _script(tmp_path, "who.sh", f'echo "$WHO" >> {out}\n')
    for sid in range(len(sim.frontends)):
        sim.set_frontend_env(sid, {"WHO": f"fe{sid}"})
    one.hook.allocate({"NAME": "err", "TYPE": "state", "RESOURCE": "HOST", "STATE": "ERROR",
                       "COMMAND": str(script)})
    first = leader_id(sim)
    sim.crash_host(0)
    sim.wait_for(lambda: sim.hook_executions, 5)
    sim.kill_server(first)
    sim.wait_for(lambda: any(s["state_name"] == "LEADER" for s in sim.raft_status()), 10)
    second = leader_id(sim)
    sim.crash_host(1)
    sim.wait_for(lambda: len(sim.hook_executions) == 2, 10)
    assert sim.wait_hooks_idle(5)
    assert out.read_text().split() == [f"fe{first}", f"fe{second}"]
    assert first != second
