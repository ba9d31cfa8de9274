"""The Raft monitor against the simulator's front-ends, with real Redis.

The first tests run one check at a time (`run_raft_check`, no Celery) and read the Events it
recorded; the last ones run the whole path — `oneha beat` processes, a real worker, the incident
engine — and look at incidents.
"""

import os
import signal
import subprocess
import sys

import pytest
import redis

from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.events import EventStore
from gateway.adapters.store.incidents import IncidentStore
from gateway.domain.story import summary as incident_summary
from gateway.adapters.store.raft import RaftStore
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from simulator import CloudSpec, Simulator
from tasks.monitor import run_raft_check
from tests.support.worker import ROOT, test_config, wait_until, write_config

RAFT = {"interval": 0.3, "lag_threshold": 50, "flap_count": 3, "flap_window": "1m"}


def config_for(sim, key_prefix, redis_url, **extra):
    return test_config(key_prefix, redis_url,
                       opennebula={"endpoints": sim.endpoints, "session": sim.session,
                                   "timeout": 1.0, "retries": 1},
                       raft={**RAFT, **extra.pop("raft", {})}, **extra)


@pytest.fixture
def cleanup_queue(key_prefix, redis_url):
    """Events recorded without a worker leave Celery messages in the test's queue: remove them."""
    yield
    redis.Redis.from_url(redis_url).delete(key_prefix.rstrip(":") + ".tasks")


def start_sim(frontends=3, **spec):
    return Simulator(CloudSpec(hosts=2, vms=2, frontends=frontends, **spec),
                     control_port=None).start()


class Monitor:
    """One Raft check at a time, as the task does it, and what it recorded."""

    def __init__(self, sim, key_prefix, redis_url, **extra):
        settings = settings_from_dict(config_for(sim, key_prefix, redis_url, **extra), env={})
        self.rt = Runtime.from_settings(settings)
        self.one = OpenNebula.from_settings(settings)
        self.events = EventStore.of(self.rt)

    def check(self):
        return run_raft_check(self.rt, self.one)

    def recorded(self):
        """(object_id, condition, status) of every Event recorded so far, oldest first."""
        return [(e.object_id, e.condition, e.status) for e in reversed(self.events.recent(500))]


@pytest.fixture
def sim():
    s = start_sim(election_timeout=0.3)
    yield s
    s.stop()


@pytest.fixture
def monitor(sim, key_prefix, redis_url, cleanup_queue):
    return Monitor(sim, key_prefix, redis_url)


def test_a_healthy_zone_raises_nothing_and_publishes_a_snapshot(monitor):
    result = monitor.check()
    assert result.assessment.findings == {} and monitor.recorded() == []
    snap = RaftStore.of(monitor.rt).snapshot()
    assert snap["leader"] == 0
    assert [(s["id"], s["state"], s["lag"]) for s in snap["servers"]] == [
        (0, "LEADER", 0), (1, "FOLLOWER", 0), (2, "FOLLOWER", 0)]


def test_leader_lost_then_elected_fires_and_resolves_once(sim, monitor):
    monitor.check()
    sim.cloud.raft.election_timeout = 30  # hold the election until the check has seen it
    sim.kill_leader()
    monitor.check()
    monitor.check()  # a second check while it lasts records nothing new
    assert monitor.recorded() == [("zone0", "RAFT/NO_LEADER", "firing"),
                                  ("zone0/0", "RAFT/SERVER_UNREACHABLE", "firing")]
    [no_leader] = [e for e in monitor.events.recent(10) if e.object_id == "zone0"]
    assert "last leader was server 0 in term 1" in no_leader.summary
    assert no_leader.resource == "FRONTEND" and no_leader.labels["severity"] == "critical"

    sim.cloud.raft.election_timeout = 0.05
    with sim.cloud.lock:
        sim.cloud.raft._schedule_election()
    sim.wait_for(lambda: any(s["state_name"] == "LEADER" for s in sim.raft_status()), timeout=10)
    monitor.check()
    [elected] = [e for e in monitor.events.recent(1)]
    assert (elected.object_id, elected.condition, elected.status) == (
        "zone0", "RAFT/LEADER_ELECTED", "resolved")
    assert "is the Raft leader (term 2)" in elected.summary

    sim.restart_server(0)
    monitor.check()
    monitor.check()
    assert monitor.recorded()[-1] == ("zone0/0", "RAFT/SERVER_REACHABLE", "resolved")
    assert len(monitor.recorded()) == 4


def test_a_leader_change_between_two_checks_is_reported_then_resolved(sim, monitor):
    monitor.check()
    sim.kill_leader()
    sim.wait_for(lambda: any(s["state_name"] == "LEADER" for s in sim.raft_status()), timeout=10)
    monitor.check()
    assert ("zone0", "RAFT/LEADER_CHANGED", "firing") in monitor.recorded()
    monitor.check()
    assert monitor.recorded()[-1] == ("zone0", "RAFT/LEADER_ELECTED", "resolved")


def test_a_lagging_follower_warns_and_one_beyond_retention_carries_the_recovery_steps(
        sim, monitor):
    for _ in range(6):  # a busy zone: the leader's log is long enough to fall behind in
        sim.append_log(500)
    monitor.check()
    sim.lag_follower(2, 200)  # threshold 50, retention 1000
    monitor.check()
    assert monitor.recorded() == [("zone0/2", "RAFT/FOLLOWER_LAG", "firing")]
    sim.lag_follower(2, 1500)  # beyond the retention window: it cannot catch up by itself
    for _ in range(3):
        monitor.check()
    assert monitor.recorded() == [("zone0/2", "RAFT/FOLLOWER_LAG", "firing"),
                                  ("zone0/2", "RAFT/FOLLOWER_BEYOND_RETENTION", "firing")]
    beyond = monitor.events.recent(1)[0]
    assert "1500 log records behind the leader fe0 (#0)" in beyond.summary
    assert "more than the log retention of 1000" in beyond.summary  # read from system.config
    assert "onezone server-reset 0 2" in beyond.summary and "onedb restore" in beyond.summary

    sim.reset_server(2)  # the manual recovery procedure
    monitor.check()
    assert monitor.recorded()[-1] == ("zone0/2", "RAFT/FOLLOWER_RECOVERED", "resolved")


@pytest.mark.parametrize("frontends", [2, 4])
def test_an_even_zone_warns_about_fault_tolerance(frontends, key_prefix, redis_url, cleanup_queue):
    sim = start_sim(frontends)
    try:
        m = Monitor(sim, key_prefix, redis_url)
        m.check()
        m.check()
        assert m.recorded() == [("zone0/quorum", "RAFT/NO_FAULT_TOLERANCE", "firing")]
        event = m.events.recent(1)[0]
        assert f"{frontends} front-end server(s)" in event.summary
        assert event.labels["severity"] == "warning"
    finally:
        sim.stop()


def test_a_poll_finds_zone_servers_oneha_was_not_configured_with(sim, key_prefix, redis_url,
                                                                cleanup_queue):
    settings = settings_from_dict(config_for(sim, key_prefix, redis_url), env={})
    rt = Runtime.from_settings(settings)
    one = OpenNebula([sim.endpoints[0]], sim.session, timeout=1.0)  # only the leader configured
    sim.kill_server(2)
    result = run_raft_check(rt, one)
    assert {v.server_id for v in result.assessment.servers} == {0, 1, 2}
    assert result.assessment.findings["zone0/2"].condition == "RAFT/SERVER_UNREACHABLE"


# ---- the whole path: beat processes, a worker, incidents ------------------------------------

def start_beats(config, tmp_path, n=2):
    path = write_config(config, tmp_path, "beat.yaml")
    env = {**os.environ, "ONEHA_CONFIG": str(path)}
    env.pop("REDIS_URL", None)
    env.pop("ONEHA_REDIS_URL", None)
    return [subprocess.Popen([sys.executable, "-m", "gateway.cli", "beat"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True) for _ in range(n)]


def stop_beats(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=10)


def zone_incident(incidents):
    return next((i for i in incidents.list(open_only=False) if i.key == "frontend:zone0"), None)


def test_killing_the_leader_opens_an_incident_that_the_new_leader_resolves(
        key_prefix, redis_url, workers, tmp_path):
    sim = start_sim(election_timeout=1.0)
    config = config_for(sim, key_prefix, redis_url, reconciler={"enabled": False})
    beats = []
    try:
        workers.start(config, concurrency=2)
        beats = start_beats(config, tmp_path)
        rt = Runtime.from_settings(settings_from_dict(config, env={}))
        incidents, store = IncidentStore(rt), RaftStore.of(rt)
        wait_until(lambda: store.polls() >= 2, timeout=30, what="the monitor running")
        assert incidents.open_for("frontend:zone0") is None

        polls_at_kill = store.polls()
        killed = sim.kill_leader()
        # "Within two monitor intervals": once two checks have completed since the kill (the
        # first may have started before it), the leader-lost event is recorded.
        wait_until(lambda: store.polls() >= polls_at_kill + 2, timeout=30, what="two checks")
        lost = [e for e in EventStore.of(rt).recent(50)
                if e.object_id == "zone0" and e.status == "firing"]
        assert [e.condition for e in lost] in (["RAFT/NO_LEADER"], ["RAFT/LEADER_CHANGED"])
        inc = wait_until(lambda: zone_incident(incidents), timeout=30,
                         what="a leader-lost incident")
        wait_until(lambda: (incidents.get(inc.id).state == "resolved"), timeout=30,
                   what="the new leader resolving the incident")
        done = incidents.get(inc.id)
        assert done.primary.condition == "RAFT/LEADER_ELECTED"
        assert [i.id for i in incidents.list(open_only=False) if i.key == "frontend:zone0"] == [
            inc.id]  # one incident for the whole episode
        timeline = [t.text for t in incidents.timeline(inc.id)]
        assert any(lost[0].condition in t for t in timeline), timeline
        assert any("RAFT/LEADER_ELECTED" in t for t in timeline), timeline
        server = wait_until(lambda: incidents.open_for(f"frontend:zone0/{killed}"), timeout=30,
                            what="the dead server's own incident")
        assert server.primary.condition == "RAFT/SERVER_UNREACHABLE"
    finally:
        stop_beats(beats)
        sim.stop()


def test_a_remediation_held_up_by_the_leader_loss_completes_through_the_new_leader(
        key_prefix, redis_url, workers, tmp_path):
    """A VM freezes; its `resume` is due just as the leader dies: it goes out during the
    election and is done by the new leader, never twice."""
    from gateway.adapters.store.remediation import RemediationStore

    sim = start_sim(election_timeout=3.0)
    config = config_for(sim, key_prefix, redis_url, reconciler={"interval": 0.3},
                        secret_key="test-secret",
                        remediation={"mode": "auto", "grace_cycles": 0,
                                     "monitoring_interval": 0.3, "verify_timeout": 10,
                                     "verify_interval": 0.1, "retry_backoff": 0.3})
    beats = []
    try:
        rt = Runtime.from_settings(settings_from_dict(config, env={}))
        remediation = RemediationStore(rt.redis, key_prefix)
        remediation.pause("test", "hold the action until the leader is gone")
        workers.start(config, concurrency=2)
        beats = start_beats(config, tmp_path)
        vm_id = sim.vms()[0]["id"]
        sim.freeze_vm(vm_id)
        incidents = IncidentStore(rt)
        inc = wait_until(lambda: incidents.open_for(f"vm:{vm_id}"), timeout=30,
                         what="the VM incident (raised by the reconciler)")
        wait_until(lambda: remediation.plan_ids(inc.id), timeout=30, what="a remediation plan")
        killed = sim.kill_leader()
        remediation.resume()
        sim.wait_for(lambda: sim.vm(vm_id)["lcm_state_name"] == "RUNNING", timeout=60,
                     message="the VM running again")
        resumes = [e for e in sim.action_log
                   if e["method"] == "one.vm.action" and e["args"] == ["resume", vm_id]]
        assert [e["ok"] for e in resumes].count(True) == 1, resumes
        done = next(e for e in resumes if e["ok"])
        leader_now = next(s["SERVER_ID"] for s in sim.raft_status() if s["state_name"] == "LEADER")
        assert done["server_id"] == leader_now != killed
        held = [r["data"].get("guard") for r in remediation.audit_log(50)
                if r["what"] == "action_held"]
        assert "no_leader" in held, held  # it really was due during the election
        wait_until(lambda: incidents.get(inc.id).state == "resolved", timeout=30,
                   what="the VM incident resolved")
    finally:
        stop_beats(beats)
        sim.stop()


# ---- `oneha raft` ----------------------------------------------------------------------------

def test_oneha_raft_prints_the_cluster_as_a_table_and_fails_on_critical_findings(tmp_path):
    import json

    from click.testing import CliRunner

    from gateway.cli import main

    sim = start_sim()
    try:
        for _ in range(4):
            sim.append_log(400)
        sim.lag_follower(2, 30)
        path = tmp_path / "oneha.yaml"
        path.write_text(json.dumps({"opennebula": {"endpoints": sim.endpoints,
                                                   "session": sim.session, "timeout": 1}}))
        ok = CliRunner().invoke(main, ["-c", str(path), "raft"])
        assert ok.exit_code == 0, ok.output
        lines = ok.output.splitlines()
        assert lines[1].split() == ["ID", "NAME", "ENDPOINT", "STATE", "TERM", "LOG", "INDEX",
                                    "COMMIT", "LAG"]
        assert lines[2].split() == ["0", "fe0*", sim.endpoints[0], "LEADER", "1", "1700", "1700",
                                    "0"]
        assert lines[4].split() == ["2", "fe2", sim.endpoints[2], "FOLLOWER", "1", "1670", "1670",
                                    "30"]
        assert "no findings" in ok.output

        sim.kill_server(1)
        bad = CliRunner().invoke(main, ["-c", str(path), "raft", "--json"])
        assert bad.exit_code == 1
        snap = json.loads(bad.output[bad.output.index("{"):])
        assert [s["state"] for s in snap["servers"]] == ["LEADER", "UNREACHABLE", "FOLLOWER"]
        assert [f["condition"] for f in snap["findings"]] == ["RAFT/SERVER_UNREACHABLE"]
    finally:
        sim.stop()


def test_beyond_retention_and_an_even_zone_become_one_incident_each(
        key_prefix, redis_url, workers, tmp_path):
    sim = start_sim(frontends=4)
    config = config_for(sim, key_prefix, redis_url, reconciler={"enabled": False})
    beats = []
    try:
        for _ in range(6):
            sim.append_log(500)
        workers.start(config, concurrency=2)
        beats = start_beats(config, tmp_path)
        rt = Runtime.from_settings(settings_from_dict(config, env={}))
        incidents, store = IncidentStore(rt), RaftStore.of(rt)
        quorum = wait_until(lambda: incidents.open_for("frontend:zone0/quorum"), timeout=30,
                            what="the fault-tolerance warning")
        assert quorum.severity == "warning"
        assert quorum.primary.condition == "RAFT/NO_FAULT_TOLERANCE"

        sim.lag_follower(2, 200)  # first lagging ...
        wait_until(lambda: incidents.open_for("frontend:zone0/2"), timeout=30, what="lag")
        sim.lag_follower(2, 2000)  # ... then beyond the recovery window
        polls = store.polls()
        wait_until(lambda: store.polls() >= polls + 3, timeout=30, what="three more checks")
        inc = wait_until(lambda: (lambda i: i if i and i.primary.condition
                                  == "RAFT/FOLLOWER_BEYOND_RETENTION" else None)(
            incidents.open_for("frontend:zone0/2")), timeout=30, what="the escalation")
        assert [i.id for i in incidents.list(open_only=False) if i.key == "frontend:zone0/2"] == [
            inc.id]
        events = {e.event_id: e for e in EventStore.of(rt).recent(200)}
        [steps] = [events[i].summary for i in inc.event_ids
                   if events[i].condition == "RAFT/FOLLOWER_BEYOND_RETENTION"]
        assert "onedb restore" in steps and "onezone server-reset 0 2" in steps
        told = "\n".join(incident_summary(inc).get("details", []))  # what the mail carries
        assert "onedb restore" in told and "onezone server-reset 0 2" in told

        sim.reset_server(2)  # the manual recovery done
        wait_until(lambda: incidents.get(inc.id).state == "resolved", timeout=30,
                   what="the follower recovered")
        assert incidents.open_for("frontend:zone0/quorum") is not None  # still 4 servers
    finally:
        stop_beats(beats)
        sim.stop()
