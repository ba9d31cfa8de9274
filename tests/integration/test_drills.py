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

HEARTBEAT = 1.0  # the front-ends' flush timer, in these tests
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
        """At a fixed rate, as cron does: a slow run does not push the next one back."""
        runs: list[subprocess.Popen] = []
        next_at = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += HEARTBEAT
            runs = [r for r in runs if r.poll() is None]
            runs += [subprocess.Popen([sys.executable, str(SENDER), "--flush"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env={"ONEHA_HOOK_CONFIG": str(self.config(sid)),
                                           "PATH": "/usr/bin:/bin"})
                     for sid in range(len(self.sim.frontends)) if sid not in self.stopped]
        for run in runs:
            run.wait(timeout=10)

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
                "check_interval": CHECK, "timeout": 3, "heartbeats": "all", **drills})
    return config, settings_from_dict(config, env={})


def install_hooks(settings, command):
    one = OpenNebula.from_settings(settings)
    hook_adapter.install(one, [t.with_command(str(command)) for t in hook_adapter.load_templates()])
    return one


def test_a_drill_reaches_the_drill_receiver_only_through_the_leaders_hook_also_after_a_new_leader(
        sim, key_prefix, redis_url, workers, tmp_path):
    with ChatSink() as ops, ChatSink() as drill:
        config, settings = setup(sim, key_prefix, redis_url, ops, drill, heartbeats="off")
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

                measured = {}  # seconds until the worker created the incident (its clock)
                # 1. a front-end's sender signs with a key the gateway does not accept
                t0 = time.time()
                fes.configure(1, key="rotated-on-one-side-only")
                inc = wait_until(lambda: opened(incidents, "alertpath:key/fe1"), 15,
                                 what="key incident")
                measured["wrong key, from the change"] = inc.created_at - t0
                # 2. a front-end's heartbeats stop (its timer, or its way to the gateways, is gone)
                fes.stopped.add(2)
                inc = wait_until(lambda: opened(incidents, "alertpath:heartbeat/fe2"), 15,
                                 what="silence incident")
                last = flow.store.heartbeats()["fe2"]["at"]
                measured["silence, from the last heartbeat"] = inc.created_at - last
                # 3. the drill hook is removed
                t0 = time.time()
                hook_id = next(h["id"] for h in one.hooks() if h["name"] == "oneha-drill")
                one.hook_delete(hook_id)
                inc = wait_until(lambda: opened(incidents, "alertpath:drill/hook"), 15,
                                 what="hook incident")
                measured["drill hook removed, from the change"] = inc.created_at - t0
                print("incident opened after (s):", {k: round(v, 2) for k, v in measured.items()})
                # A wrong key shows at the next flush, a removed hook at the next check: within
                # two intervals. Silence is, by definition, missed_heartbeats (2) intervals after
                # the last heartbeat, plus the check that sees it. (+1 s for a loaded machine.)
                assert measured["wrong key, from the change"] <= 2 * HEARTBEAT + 1.0
                assert measured["drill hook removed, from the change"] <= 2 * HEARTBEAT + 1.0
                assert measured["silence, from the last heartbeat"] <= 2 * HEARTBEAT + CHECK + 1.0
                # told to people (grouped as the operator's route says: here one group)
                wait_until(lambda: all(k in " ".join(p.title + " " + p.message
                                                     for p in ops.messages)
                                       for k in ("key/fe1", "heartbeat/fe2", "drill/hook")),
                           10, what="the three findings told to ops")
                told = " ".join(p.title + " " + p.message for p in ops.messages)
                assert "heartbeat/fe0" not in told  # the healthy front-end
                assert "heartbeat/fe1" not in told  # its silence is the key's: told once

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


def test_oneha_drill_says_which_front_end_and_a_drill_that_never_comes_back_pages_people(
        sim, key_prefix, redis_url, workers, tmp_path):
    from tests.support.worker import write_config
    with ChatSink() as ops, ChatSink() as drill:
        config, settings = setup(sim, key_prefix, redis_url, ops, drill, heartbeats="off",
                                 enabled=True, timeout=2)
        gateway = Gateway(settings)
        try:
            fes = Frontends(sim, tmp_path, gateway.url)
            install_hooks(settings, fes.command)
            workers.start(config)
            path = write_config(config, tmp_path, "cli.yaml")

            def oneha(*args):
                return subprocess.run([sys.executable, "-m", "gateway.cli", "-c", str(path),
                                       *args], capture_output=True, text=True, timeout=60)

            done = oneha("drill", "--json")
            assert done.returncode == 0, done.stdout + done.stderr
            import json
            result = json.loads(done.stdout)
            assert result["frontend"] == f"fe{leader(sim)}" and result["receiver"] == "drill"
            assert 0 < result["gateway_seconds"] <= result["receiver_seconds"] < 20

            sim.set_hooks_enabled(False)  # the hook manager stops running hooks
            lost = oneha("drill", "--timeout", "2")
            assert lost.returncode == 1 and "NOT reached" in lost.stdout, lost.stdout
            time.sleep(2.2)  # past drills.timeout
            rt = Runtime.from_settings(settings)
            DrillFlow(rt).check()
            incidents = IncidentStore(rt)
            inc = wait_until(lambda: opened(incidents, "alertpath:drill/reached"), 10,
                             what="the lost drill's incident")
            assert "did not come back" in inc.objects["alertpath:drill/reached"].detail
            wait_until(lambda: any("DRILL/NOT_REACHED" in p.title + p.message
                                   for p in ops.messages), 10, what="ops told")
        finally:
            gateway.close()
