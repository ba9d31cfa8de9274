"""The single beat: several instances, each periodic task sent once per interval (real Redis)."""

import os
import signal
import subprocess
import sys

import pytest

from gateway.adapters.store.raft import RaftStore
from gateway.adapters.store.schedule import ScheduleStore
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from tasks.beat import Beat, collect_periodic
from tests.support.worker import ROOT, test_config, wait_until, write_config


@pytest.fixture
def rt(key_prefix, redis_url):
    return Runtime.from_settings(settings_from_dict(test_config(key_prefix, redis_url), env={}))


def beats(rt, n, periodic):
    sent = []
    return [Beat(rt, periodic, lambda task, interval, i=i: sent.append((i, task)),
                 beat_id=f"b{i}") for i in range(n)], sent


def test_of_three_beats_exactly_one_sends_each_slot(rt):
    group, sent = beats(rt, 3, {"oneha.a": 1.0, "oneha.b": 2.0})
    for now in (100.0, 100.4, 100.9, 101.0, 101.5, 102.2, 103.9):
        for b in group:
            b.tick(now)
    sends = [task for _, task in sent]
    # a: slots 100, 101, 102, 103; b: slots 50, 51
    assert sends.count("oneha.a") == 4 and sends.count("oneha.b") == 2


def test_a_beat_behind_another_never_sends_an_older_slot(rt):
    (ahead, behind), sent = beats(rt, 2, {"oneha.a": 10.0})
    assert ahead.tick(105.0) == ["oneha.a"]
    assert behind.tick(99.0) == []  # slot 9 < slot 10 already claimed
    assert behind.tick(108.0) == []  # slot 10: claimed by `ahead`
    assert behind.tick(110.0) == ["oneha.a"]
    claims = ScheduleStore.of(rt).claims()
    assert claims["oneha.a"][0] == 11 and claims["oneha.a"][1].startswith("b1 ")


def test_periodic_tasks_come_from_every_task_module(rt):
    periodic = collect_periodic(rt.settings)
    assert periodic["oneha.raft_check"] == rt.settings.raft.interval
    assert periodic["oneha.reconcile"] == rt.settings.reconciler.interval
    assert periodic["oneha.flush_due"] > 0


def test_a_disabled_check_is_not_scheduled(key_prefix, redis_url):
    settings = settings_from_dict(test_config(key_prefix, redis_url, raft={"enabled": False}),
                                  env={})
    assert "oneha.raft_check" not in collect_periodic(settings)


def test_several_beat_processes_run_each_check_at_most_once_per_interval(
        rt, key_prefix, redis_url, workers, tmp_path):
    """Three `oneha beat` processes and a real worker; the Raft check polls endpoints where
    nothing listens (each poll is quick and counted). Executions never exceed interval slots."""
    interval = 0.5
    config = test_config(key_prefix, redis_url,
                         opennebula={"endpoints": ["http://127.0.0.1:9/RPC2"], "timeout": 0.5,
                                     "retries": 0},
                         raft={"interval": interval}, reconciler={"enabled": False})
    workers.start(config, concurrency=2)
    path = write_config(config, tmp_path, "beat.yaml")
    env = {**os.environ, "ONEHA_CONFIG": str(path)}
    env.pop("REDIS_URL", None)
    env.pop("ONEHA_REDIS_URL", None)
    schedule, store = ScheduleStore.of(rt), RaftStore.of(rt)
    started = schedule.now()
    procs = [subprocess.Popen([sys.executable, "-m", "gateway.cli", "beat"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True) for _ in range(3)]
    try:
        wait_until(lambda: store.polls() >= 4, timeout=30, what="four raft checks")
        procs[0].send_signal(signal.SIGTERM)  # one beat goes away: the others carry on
        assert procs[0].wait(timeout=10) == 0
        before = store.polls()
        wait_until(lambda: store.polls() >= before + 2, timeout=30, what="checks after a beat left")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=10)
    stopped = schedule.now()
    wait_until(lambda: rt.redis.llen(rt.settings.task_queue) == 0
               and not rt.redis.exists(rt.key("run", "oneha.raft_check")), timeout=10,
               what="the last check sent to finish")
    slots = int(stopped // interval) - int(started // interval) + 1
    stats = schedule.run_stats()
    runs = stats.get("oneha.raft_check:ran", 0) + stats.get("oneha.raft_check:overlapped", 0)
    assert 6 <= store.polls() <= runs <= slots, (store.polls(), stats, slots)
    assert all(p.returncode == 0 for p in procs), [p.stderr.read()[-2000:] for p in procs]

    from click.testing import CliRunner

    from gateway.cli import main
    status = CliRunner().invoke(main, ["-c", str(path), "beat", "--status"])
    assert status.exit_code == 0, status.output
    assert f"oneha.raft_check       every {interval:g}s  last sent by " in status.output
    assert f"ran {stats['oneha.raft_check:ran']}x" in status.output
    assert "last Raft check at" in status.output


def test_a_beat_rides_out_a_redis_outage(own_redis, key_prefix, caplog):
    import threading

    rt = Runtime.from_settings(settings_from_dict(test_config(key_prefix, own_redis.url), env={}))
    sent = []
    beat = Beat(rt, {"oneha.t": 0.2}, lambda task, interval: sent.append(task), beat_id="b")
    stop = threading.Event()
    thread = threading.Thread(target=beat.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(sent) >= 2, timeout=10, what="sends before the outage")
        own_redis.stop()
        stalled = len(sent)
        wait_until(lambda: caplog.text.count("beat_tick_failed") >= 2, timeout=10,
                   what="ticks failing while Redis is away")
        assert thread.is_alive() and len(sent) <= stalled + 1  # no claim, no send
        own_redis.start()
        wait_until(lambda: len(sent) >= stalled + 2, timeout=20, what="sends after the outage")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
