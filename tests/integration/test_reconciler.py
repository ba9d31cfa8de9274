"""The reconciler with the whole path: simulator (hooks installed, then disabled), `oneha beat`,
a real worker, the incident engine, the real gateway and the real hook sender."""

import base64
import sys
import threading
import xmlrpc.client

import pytest
import redis
from werkzeug.serving import make_server

from gateway.adapters import hooks as hook_adapter
from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.events import EventStore
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.schedule import ScheduleStore
from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from simulator import CloudSpec, Simulator
from tasks.monitor import RECONCILE_TASK, run_reconcile
from tests.hook.support import SENDER, HookRunner
from tests.integration.test_raft import start_beats, stop_beats
from tests.support.worker import test_config, wait_until

KEY = "fe1-key"


def config_for(sim, key_prefix, redis_url):
    return test_config(key_prefix, redis_url,
                       opennebula={"endpoints": sim.endpoints, "session": sim.session,
                                   "timeout": 1.0, "retries": 1},
                       ingest={"frontends": {"fe1": {"keys": [KEY]}}},
                       raft={"enabled": False}, reconciler={"interval": 0.5})


class Gateway:
    """The ingest app served over HTTP in a thread (what `oneha serve --dev` runs)."""

    def __init__(self, settings):
        self.server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sim():
    s = Simulator(CloudSpec(hosts=3, vms=6, frontends=3), control_port=None).start()
    s.wait_for(lambda: all(v["lcm_state_name"] == "RUNNING" for v in s.vms()), timeout=20)
    yield s
    s.stop()


def raw_host_xml(sim, host_id) -> str:
    """The host's XML exactly as oned hands it to a hook ($TEMPLATE)."""
    ok, xml, _code, *_ = xmlrpc.client.ServerProxy(sim.endpoints[0]).one.host.info(
        sim.session, host_id)
    assert ok
    return xml


def test_a_failure_no_hook_reported_is_raised_and_a_late_hook_event_joins_it(
        sim, key_prefix, redis_url, workers, tmp_path):
    config = config_for(sim, key_prefix, redis_url)
    settings = settings_from_dict(config, env={})
    rt = Runtime.from_settings(settings)
    gateway, beats = Gateway(settings), []
    hook = HookRunner(tmp_path, key=KEY, frontend="fe1")
    hook.configure(urls=gateway.url)
    wrapper = tmp_path / "oneha-hook"
    wrapper.write_text(f"#!/bin/sh\nONEHA_HOOK_CONFIG={hook.config} exec {sys.executable} "
                       f"{SENDER} \"$@\"\n")
    wrapper.chmod(0o755)
    hook.env()  # writes the sender's config file
    one = OpenNebula.from_settings(settings)
    hook_adapter.install(one, [t.with_command(str(wrapper)) for t in hook_adapter.load_templates()])
    try:
        workers.start(config, concurrency=2)
        beats = start_beats(config, tmp_path, n=1)
        schedule, incidents = ScheduleStore.of(rt), IncidentStore(rt)
        wait_until(lambda: schedule.run_stats().get(f"{RECONCILE_TASK}:ran", 0) >= 1, timeout=30,
                   what="the reconciler running")

        sim.set_hooks_enabled(False)  # oned's hooks fail silently from now on
        host = next(h for h in sim.hosts() if h["vm_ids"])
        sim.crash_host(host["id"])
        sim.wait_for(lambda: sim.host(host["id"])["state_name"] == "ERROR", timeout=20)
        sim.wait_for(lambda: all(sim.vm(v)["lcm_state_name"] == "UNKNOWN" for v in host["vm_ids"]),
                     timeout=20)
        # "Within one interval": the first pass that starts after the failure raises it; two
        # more completed passes than now guarantee one of them started after it.
        ran = schedule.run_stats()[f"{RECONCILE_TASK}:ran"]
        wait_until(lambda: schedule.run_stats()[f"{RECONCILE_TASK}:ran"] >= ran + 2, timeout=30,
                   what="a reconcile pass after the failure")
        raised = {e.object_key: e for e in EventStore.of(rt).recent(100)
                  if e.source == "reconciler" and e.status == "firing"}
        vm_keys = {f"vm:{v}" for v in host["vm_ids"]}
        assert set(raised) == {f"host:{host['id']}"} | vm_keys
        assert not [x for x in sim.hook_executions if x["hook_name"].startswith("oneha-")]

        inc = wait_until(lambda: incidents.open_for(f"host:{host['id']}"), timeout=30,
                         what="the host incident")
        inc = wait_until(lambda: (lambda i: i if vm_keys <= set(i.objects) else None)(
            incidents.get(inc.id)), timeout=30, what="the VMs joining the host incident")

        # The hook's event arrives late (spooled on the front-end, flushed later): same failure.
        result = hook.run(stdin=base64.b64encode(raw_host_xml(sim, host["id"]).encode()).decode())
        assert result.returncode == 0 and "accepted by" in result.stderr, result.stderr
        hook_event = next(e for e in EventStore.of(rt).recent(5) if e.source == "hook")
        wait_until(lambda: hook_event.event_id in incidents.get(inc.id).event_ids, timeout=30,
                   what="the hook event applied to the same incident")
        about_host = [i for i in incidents.list(open_only=False)
                      if i.key == f"host:{host['id']}" or i.key in vm_keys]
        # One incident. (A VM event processed before its host's may have opened a VM incident
        # for a moment; the host incident absorbed it: merged, not a second alert.)
        assert [i.id for i in about_host if i.merged_into is None] == [inc.id]
        assert all(i.merged_into == inc.id for i in about_host if i.id != inc.id)

        sim.recover_host(host["id"])  # back: the reconciler resolves what the hooks never will
        wait_until(lambda: incidents.get(inc.id).state == "resolved", timeout=30,
                   what="the reconciler resolving the incident")
        assert all(o.status == "resolved" for o in incidents.get(inc.id).objects.values())
    finally:
        stop_beats(beats)
        gateway.close()
        redis.Redis.from_url(redis_url).delete(settings.task_queue)


def test_repeated_passes_record_each_failure_once(sim, key_prefix, redis_url):
    settings = settings_from_dict(config_for(sim, key_prefix, redis_url), env={})
    rt = Runtime.from_settings(settings)
    try:
        vm_id = sim.vms()[0]["id"]
        sim.freeze_vm(vm_id)
        sim.wait_for(lambda: sim.vm(vm_id)["lcm_state_name"] == "UNKNOWN", timeout=20)
        first = run_reconcile(rt)
        raised = [d.object_key for d in first.plan.findings if d.action == "raise"]
        assert raised == [f"vm:{vm_id}"]
        assert len(first.recorded.new) == 1
        again = run_reconcile(rt)  # no worker: no incident yet, so it raises again ...
        assert again.plan.count("raise") == 1
        assert again.recorded.new == [] and again.recorded.duplicates == 1  # ... and dedupes
        assert [e.source for e in EventStore.of(rt).recent(10)] == ["reconciler"]
    finally:
        redis.Redis.from_url(redis_url).delete(settings.task_queue)


def test_oneha_reconcile_once_prints_its_decisions(sim, key_prefix, redis_url, tmp_path):
    from click.testing import CliRunner

    from gateway.cli import main
    from tests.support.worker import write_config

    config = config_for(sim, key_prefix, redis_url)
    path = write_config(config, tmp_path)
    try:
        sim.crash_host(0)
        sim.wait_for(lambda: sim.host(0)["state_name"] == "ERROR", timeout=20)
        result = CliRunner().invoke(main, ["-c", str(path), "reconcile", "--once"])
        assert result.exit_code == 0, result.output
        assert "raise    host:0     ERROR and no open incident holds it" in result.output
        assert "3 hosts, 6 VMs: " in result.output
    finally:
        redis.Redis.from_url(redis_url).delete(settings_from_dict(config, env={}).task_queue)
