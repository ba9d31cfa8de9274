"""Drills and heartbeats end to end: the simulator's hook manager runs the installed drill hook on
the leader, with that front-end's own sender configuration (its name, its key); the real sender
signs the drill back to the real gateway (HTTP); a real worker turns it into a DRILL incident
that reaches the drill receiver and nobody else — also after the leader changed. The dead man's
switch, run by a real beat: removing the drill hook, a front-end's sender with a wrong key, a
front-end whose heartbeats stop — each opens an incident for people within two intervals."""

import subprocess
import sys
import threading
import time

import pytest

from gateway.adapters import hooks as hook_adapter
from gateway.adapters.opennebula import OpenNebula
from gateway.adapters.store.incidents import IncidentStore
from gateway.config import settings_from_dict
from gateway.flows.drills import DrillFlow
from gateway.runtime import Runtime
from simulator import CloudSpec, Simulator
from simulator.sinks import ChatSink
from tests.hook.support import SENDER
from tests.integration.test_raft import start_beats, stop_beats
from tests.integration.test_reconciler import Gateway
from tests.support.worker import test_config, wait_until

HEARTBEAT = 0.5  # the front-ends' flush timer, in these tests
CHECK = 0.25  # the beat's drill_check


@pytest.fixture
def sim():
    s = Simulator(CloudSpec(hosts=2, vms=2, frontends=3, monitoring_interval=0.2),
                  control_port=None).start()
    s.wait_for(lambda: any(r["state_name"] == "LEADER" for r in s.raft_status()), 10)
    yield s
    s.stop()


class Frontends:
    """Each simulated front-end's own oneha-hook.conf (name fe<N>, key k<N>), the hook command
    the hook manager runs, and the flush timer every front-end has (cron / systemd)."""

    def __init__(self, sim, tmp_path, gateway_url):
        self.sim, self.tmp, self.url = sim, tmp_path, gateway_url
        self.command = tmp_path / "oneha-hook"
        self.command.write_text(f'#!/bin/sh\nexec {sys.executable} {SENDER} "$@"\n')
        self.command.chmod(0o755)
        self.stopped: set[int] = set()
        self._stop = threading.Event()
        self._timer = threading.Thread(target=self._flush_timer, daemon=True)
        for sid in range(len(sim.frontends)):
            self.configure(sid, key=f"k{sid}")

    def config(self, sid):
        return self.tmp / f"fe{sid}.conf"

    def configure(self, sid, key):
        path = self.config(sid)
        path.write_text(f"urls = {self.url}\nkey = {key}\nfrontend = fe{sid}\n"
                        f"spool_dir = {self.tmp / f'spool{sid}'}\ntimeout = 2\n")
        path.chmod(0o600)
        self.sim.set_frontend_env(sid, {"ONEHA_HOOK_CONFIG": str(path)})

    def _flush_timer(self):
        while not self._stop.wait(HEARTBEAT):
            for sid in range(len(self.sim.frontends)):
                if sid not in self.stopped:
                    subprocess.run([sys.executable, str(SENDER), "--flush"], capture_output=True,
                                   env={"ONEHA_HOOK_CONFIG": str(self.config(sid)),
                                        "PATH": "/usr/bin:/bin"}, timeout=10)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._timer.join(timeout=10)


def leader(sim):
    return next(r["SERVER_ID"] for r in sim.raft_status() if r["state_name"] == "LEADER")


def setup(sim, key_prefix, redis_url, ops, drill, **drills):
    config = test_config(
        key_prefix, redis_url,
        opennebula={"endpoints": sim.endpoints, "session": sim.session, "timeout": 2.0,
                    "retries": 1},
        ingest={"frontends": {f"fe{i}": {"keys": [f"k{i}"]} for i in range(3)}},
        raft={"enabled": False}, reconciler={"enabled": False}, readiness={"enabled": False},
        receivers=[{"name": "ops", "urls": [ops.url()]}, {"name": "drill", "urls": [drill.url()]}],
        route={"group_wait": "0s", "group_interval": "1s"},
        drills={"receiver": "drill", "heartbeat_interval": HEARTBEAT, "missed_heartbeats": 2,
                "check_interval": CHECK, "timeout": 3, **drills})
    return config, settings_from_dict(config, env={})


def install_hooks(settings, command):
    one = OpenNebula.from_settings(settings)
    hook_adapter.install(one, [t.with_command(str(command)) for t in hook_adapter.load_templates()])
    return one


def test_a_drill_reaches_the_drill_receiver_only_through_the_leaders_hook_also_after_a_new_leader(
        sim, key_prefix, redis_url, workers, tmp_path):
    with ChatSink() as ops, ChatSink() as drill:
        config, settings = setup(sim, key_prefix, redis_url, ops, drill, heartbeats=False)
        gateway = Gateway(settings)
        try:
            fes = Frontends(sim, tmp_path, gateway.url)
            install_hooks(settings, fes.command)
            workers.start(config)
            flow = DrillFlow(Runtime.from_settings(settings))
            for round_ in (1, 2):
                lead = leader(sim)
                t0 = time.monotonic()
                sent = flow.send()
                assert not sent.error
                record = flow.wait(sent.drill_id, timeout=20)
                took = time.monotonic() - t0
                assert record.get("frontend") == f"fe{lead}", (round_, record)
                assert record["delivered"]["receiver"] == "drill"
                print(f"drill {round_}: run by fe{lead}, at the drill receiver after {took:.2f}s")
                assert [e["server_id"] for e in sim.hook_executions
                        if e["hook_name"] == "oneha-drill"][-1] == lead
                if round_ == 1:
                    sim.kill_server(lead)
                    wait_until(lambda: any(r["state_name"] == "LEADER" and r["SERVER_ID"] != lead
                                           for r in sim.raft_status()), 10, what="a new leader")
            posts = drill.wait_for(2, timeout=10)
            assert all("drill" in (p.title + p.message).lower() for p in posts)
            time.sleep(1.0)  # anything misrouted would have been delivered by now
            assert ops.messages == []  # drills never reach the normal receivers
            # and nothing was planned for a DRILL incident
            inc = IncidentStore(Runtime.from_settings(settings))
            assert all(not i.plan_id for i in inc.list(open_only=False, limit=50))
        finally:
            gateway.close()


def opened(incidents, key):
    i = incidents.open_for(key)
    return i if i is not None and i.state != "resolved" else None


def test_the_dead_mans_switch_opens_incidents_within_two_intervals(
        sim, key_prefix, redis_url, workers, tmp_path):
    with ChatSink() as ops, ChatSink() as drill:
        config, settings = setup(sim, key_prefix, redis_url, ops, drill, enabled=True,
                                 interval=1.0)
        rt = Runtime.from_settings(settings)
        incidents = IncidentStore(rt)
        gateway = Gateway(settings)
        beats = []
        try:
            with Frontends(sim, tmp_path, gateway.url) as fes:
                one = install_hooks(settings, fes.command)
                workers.start(config)
                beats = start_beats(config, tmp_path, n=1)
                flow = DrillFlow(rt)
                # the beat's drills come back, every front-end beats: nothing is wrong
                wait_until(lambda: any(d.get("reached_at") for d in flow.store.recent_drills(5)),
                           20, what="a scheduled drill back")
                wait_until(lambda: len(flow.store.heartbeats()) == 3, 10, what="3 heartbeats")
                time.sleep(4 * HEARTBEAT)
                assert [i.id for i in incidents.list(open_only=True, limit=50)
                        if i.labels.get("resource") == "ALERTPATH"] == []

                measured = {}
                # 1. a front-end's sender signs with a key the gateway does not accept
                t0 = time.monotonic()
                fes.configure(1, key="rotated-on-one-side-only")
                wait_until(lambda: opened(incidents, "alertpath:key/fe1"), 10, what="key incident")
                measured["wrong key"] = time.monotonic() - t0
                # 2. a front-end's heartbeats stop (its timer, or its way to the gateways, is gone)
                t0 = time.monotonic()
                fes.stopped.add(2)
                wait_until(lambda: opened(incidents, "alertpath:heartbeat/fe2"), 10,
                           what="silence incident")
                measured["heartbeats stopped"] = time.monotonic() - t0
                # 3. the drill hook is removed
                t0 = time.monotonic()
                hook_id = next(h["id"] for h in one.hooks() if h["name"] == "oneha-drill")
                one.hook_delete(hook_id)
                wait_until(lambda: opened(incidents, "alertpath:drill/hook"), 10,
                           what="hook incident")
                measured["drill hook removed"] = time.monotonic() - t0
                print("opened after (s):", {k: round(v, 2) for k, v in measured.items()})
                # within two intervals of the watched thing (+ a worker's processing): the wrong
                # key and the removed hook at the next checks; silence after missed_heartbeats
                assert measured["wrong key"] <= 2 * HEARTBEAT + 2 * CHECK + 1.0
                assert measured["drill hook removed"] <= 2 * CHECK + 1.0
                assert measured["heartbeats stopped"] <= 2 * HEARTBEAT + 2 * CHECK + 1.5
                texts = [p.title + " " + p.message for p in ops.wait_for(3, timeout=10)]
                assert any("fe1" in t for t in texts) and any("fe2" in t for t in texts)

                # repaired: each resolves
                fes.configure(1, key="k1")
                fes.stopped.discard(2)
                install_hooks(settings, fes.command)
                for key in ("alertpath:key/fe1", "alertpath:heartbeat/fe2",
                            "alertpath:drill/hook"):
                    wait_until(lambda: not opened(incidents, key), 10, what=f"{key} resolved")
                assert not any("ALERTPATH" in (p.title + p.message) for p in drill.messages)
        finally:
            stop_beats(beats)
            gateway.close()
