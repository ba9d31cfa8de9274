"""Readiness against the simulator, read through the leader-aware client: yes → no when VMs are
added beyond what the cluster can absorb, and back; VMs on local disks and shared persistent
disks without fencing are named with their reasons; the answer turning to no opens an incident
on the normal path (a real worker, a real chat receiver) and turning back resolves it."""

import pytest

from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.readiness import ReadinessStore
from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.flows.readiness import ReadinessFlow
from gateway.runtime import Runtime
from simulator import CloudSpec, Simulator
from simulator.spec import DiskSpec, HostSpec, VmSpec
from tests.integration.test_raft import start_beats, stop_beats
from tests.support.worker import test_config, wait_until

HOSTS = [HostSpec(f"node{i:02d}", memory_mb=4096, cpu=800) for i in (1, 2, 3)]
BASE = [VmSpec("web1", host="node01"), VmSpec("web2", host="node02"),
        VmSpec("web3", host="node03"),
        VmSpec("db", host="node01", memory_mb=512, disks=(DiskSpec(persistent=True),)),
        VmSpec("cache", host="node02", memory_mb=512, system_ds="local",
               disks=(DiskSpec(persistent=True, datastore="local"),))]
EXTRA = [VmSpec(f"batch{i}", state="hold") for i in range(6)]  # released later: the new load


@pytest.fixture
def sim():
    s = Simulator(CloudSpec(hosts=HOSTS, vms=BASE + EXTRA, frontends=3,
                            monitoring_interval=0.2), control_port=None).start()
    s.wait_for(lambda: all(v["lcm_state_name"] == "RUNNING" for v in s.vms()[:len(BASE)]), 20)
    yield s
    s.stop()


def settings_for(sim, key_prefix, redis_url, **extra):
    return settings_from_dict(test_config(
        key_prefix, redis_url,
        opennebula={"endpoints": sim.endpoints, "session": sim.session, "timeout": 2.0,
                    "retries": 1},
        remediation={"mode": "auto"}, raft={"enabled": False},
        reconciler={"enabled": False}, **extra), env={})


def vm_id(sim, name):
    return next(v["id"] for v in sim.vms() if v["name"] == name)


def release_extra(sim, one):
    for spec in EXTRA:
        one.vm_action("release", vm_id(sim, spec.name))
    sim.wait_for(lambda: all(sim.vm(vm_id(sim, s.name))["lcm_state_name"] == "RUNNING"
                             for s in EXTRA), 20, message="the new VMs running")


def terminate_extra(sim, one):
    for spec in EXTRA:
        one.vm_action("terminate-hard", vm_id(sim, spec.name))
    sim.wait_for(lambda: all(sim.vm(vm_id(sim, s.name))["state_name"] == "DONE"
                             for s in EXTRA), 20, message="the new VMs gone")


def test_yes_then_no_beyond_capacity_then_yes_again_with_the_reasons(sim, key_prefix, redis_url):
    settings = settings_for(sim, key_prefix, redis_url)
    rt = Runtime.from_settings(settings)
    one = OpenNebula.from_settings(settings)
    flow = ReadinessFlow(rt, one)

    before = flow.compute()
    (cluster,) = before.clusters
    assert cluster.survives_one and cluster.survives_two is not None
    hosts = {h.host_name: h for h in before.hosts}
    db, cache = vm_id(sim, "db"), vm_id(sim, "cache")
    reasons = {v.vm_id: v for h in hosts.values() for v in h.vms}
    assert reasons[db].outcome == "approval" and "no fencing" in reasons[db].reason
    assert reasons[cache].outcome == "people" and reasons[cache].code == "wait"
    assert "system datastore is local" in reasons[cache].reason
    assert reasons[vm_id(sim, "web1")].outcome == "auto"

    release_extra(sim, one)  # six more 1 GB VMs: two per host, 1 GB (or less) left on each
    during = flow.compute()
    (cluster,) = during.clusters
    assert not cluster.survives_one
    assert cluster.headline().startswith("cluster default can no longer lose node0")
    assert all(n >= 1 for _, n in cluster.cannot_lose)
    no_room = [v for h in during.hosts for v in h.wont_fit]
    assert no_room and "no remaining host has room" in no_room[0].reason

    terminate_extra(sim, one)
    after = flow.compute()
    assert after.clusters[0].survives_one

    # read-only: with the leader dead the followers answer (no write is ever made)
    writes = len(sim.action_log)
    sim.kill_leader()
    assert ReadinessFlow(rt, OpenNebula.from_settings(settings)).compute().clusters[0].survives_one
    assert len(sim.action_log) == writes


def test_the_beat_recomputes_and_no_opens_an_incident_and_yes_resolves_it(
        sim, key_prefix, redis_url, chat_sink, workers, tmp_path):
    config = test_config(
        key_prefix, redis_url,
        opennebula={"endpoints": sim.endpoints, "session": sim.session, "timeout": 2.0,
                    "retries": 1},
        remediation={"mode": "auto"}, raft={"enabled": False}, reconciler={"enabled": False},
        readiness={"enabled": True, "interval": 0.5},
        receivers=[{"name": "ops", "urls": [chat_sink.url()]}],
        route={"group_wait": "0s", "group_interval": "1s"})
    settings = settings_from_dict(config, env={})
    rt = Runtime.from_settings(settings)
    one = OpenNebula.from_settings(settings)
    store = ReadinessStore.of(rt)
    incidents = IncidentStore(rt)
    client = create_app(settings).test_client()
    workers.start(config)
    beats = start_beats(config, tmp_path, n=1)
    try:
        wait_until(store.report, 30, what="a first readiness report from the beat")
        text = client.get("/metrics").get_data(as_text=True)
        assert 'oneha_readiness_survives_host_loss{cluster="default"} 1.0' in text

        release_extra(sim, one)
        opened = wait_until(lambda: incidents.open_for("cluster:0"), 30, what="the incident")
        assert opened.plan_id in (None, "")  # nothing for remediation to do
        post = wait_until(lambda: [p for p in chat_sink.messages if "[FIRING]" in p.title], 20,
                          what="the firing message")[0]
        assert "N+1 LOST: node0" in post.message and "VMs without room" in post.message
        text = client.get("/metrics").get_data(as_text=True)
        assert 'oneha_readiness_survives_host_loss{cluster="default"} 0.0' in text

        terminate_extra(sim, one)
        wait_until(lambda: not incidents.open_for("cluster:0"), 30, what="the incident resolved")
        wait_until(lambda: any("RESOLVED" in p.title for p in chat_sink.messages), 20,
                   what="the resolved message")
        assert len([p for p in chat_sink.messages if "[FIRING]" in p.title]) == 1
        text = client.get("/metrics").get_data(as_text=True)
        assert 'oneha_readiness_survives_host_loss{cluster="default"} 1.0' in text
    finally:
        stop_beats(beats)


def test_oneha_readiness_is_a_check_exit_0_when_every_cluster_survives_1_when_not(
        sim, key_prefix, redis_url, tmp_path):
    import json
    import subprocess
    import sys

    from tests.support.worker import write_config

    config = test_config(key_prefix, redis_url,
                         opennebula={"endpoints": sim.endpoints, "session": sim.session,
                                     "timeout": 2.0, "retries": 1},
                         remediation={"mode": "auto"})
    path = write_config(config, tmp_path)

    def readiness(*args):
        return subprocess.run([sys.executable, "-m", "gateway.cli", "-c", str(path), "readiness",
                               *args], capture_output=True, text=True, timeout=60)

    ok = readiness("--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["clusters"][0]["survives_one"] is True
    assert {h["host_name"] for h in report["hosts"]} == {"node01", "node02", "node03"}
    release_extra(sim, OpenNebula.from_settings(settings_from_dict(config, env={})))
    no = readiness()
    assert no.returncode == 1
    assert "survives the loss of any one host: NO" in no.stdout
    assert "cannot lose node0" in no.stdout and "IF THIS HOST FAILED" in no.stdout
    assert "no fencing" in no.stdout and "left to people" in no.stdout


def test_the_estimate_uses_the_measured_time_of_recent_recoveries(sim, key_prefix, redis_url):
    from gateway.adapters.store.remediation import RemediationStore
    from gateway.domain.remediation.plans import Plan

    settings = settings_for(sim, key_prefix, redis_url)
    rt = Runtime.from_settings(settings)
    store = RemediationStore.from_runtime(rt)
    for n, seconds in enumerate((10.0, 14.0, 40.0)):  # three earlier recoveries: median 14 s
        plan = Plan(plan_id=f"host-9-x.{n}", incident_id="host-9-x", kind="host_error",
                    created_at=1000.0 + n, mode="auto", mode_reason="")
        store.save_plan(plan, "done", "", {})
        store.record(plan.plan_id, f"vm:{n}:resched", "running", acted_at=1000.0,
                     running_at=1000.0 + seconds)
    report = ReadinessFlow(rt, OpenNebula.from_settings(settings)).compute()
    assert report.measured and report.action_seconds == {"resched": 14.0}
    node01 = next(h for h in report.hosts if h.host_name == "node01")
    # node01's moves (web1, and db after approval) in one wave: grace (2 monitoring cycles, as
    # oned reports MONITORING_INTERVAL_HOST) + 14 s
    interval = float(OpenNebula.from_settings(settings).system_config()["MONITORING_INTERVAL_HOST"])
    assert node01.seconds == pytest.approx(2 * interval + 14.0)
