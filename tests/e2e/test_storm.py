"""A storm as people receive it, with the real processes: 20 hosts fail with 100 VMs each, 2,020
signed hook events reach `oneha serve` (gunicorn) from 8 keep-alive clients, and `oneha worker`
and `oneha beat` turn them into messages. The chat receiver gets exactly 20 first messages, one per
host, each saying all 100 of its VMs are affected — and nothing else while the storm settles.
Not timed: bench/alertmanager.py measures how fast.
"""

from __future__ import annotations

import http.client
import json
import queue
import re
import secrets
import signal
import threading
import time
import uuid

import pytest

from gateway import local
from gateway.demo import wait_ready
from gateway.domain import signing
from simulator.sinks import ChatSink
from tests.support.samples import b64, host_xml, vm_xml
from tests.support.worker import wait_until

HOSTS, VMS = 20, 100
CLIENTS = 8


def hook_body(resource: str, oid: int, host_id: int) -> bytes:
    host = f"node{host_id:02d}"
    if resource == "HOST":
        xml, name, state, lcm = host_xml(host_id, host, 3), host, 3, None
    else:
        xml, name, state, lcm = vm_xml(oid, state=3, lcm_state=16, host=host, host_id=host_id), \
            f"web-{oid}", 3, 16
    return json.dumps({
        "resource": resource, "id": oid, "name": name, "state": state, "lcm_state": lcm,
        "state_name": "", "lcm_state_name": None, "xml": b64(xml),
        "hook": f"oneha-{resource.lower()}", "frontend": "fe1", "sent_at": time.time(),
        "event_id": uuid.uuid4().hex}).encode()


def storm() -> list[bytes]:
    """Host by host: its HOST ERROR, then its VMs going UNKNOWN."""
    bodies = []
    for h in range(1, HOSTS + 1):
        bodies.append(hook_body("HOST", h, h))
        bodies += [hook_body("VM", h * 1000 + v, h) for v in range(VMS)]
    return bodies


def post_all(port: int, key: str, bodies: list[bytes]) -> list[int]:
    """POST every body (in order, from a shared queue) over CLIENTS keep-alive connections."""
    work: queue.Queue = queue.Queue()
    for b in bodies:
        work.put(b)
    statuses: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            try:
                body = work.get_nowait()
            except queue.Empty:
                break
            ts = int(time.time())
            conn.request("POST", "/v1/events", body=body, headers={
                "Content-Type": "application/json", "X-OneHA-Frontend": "fe1",
                "X-OneHA-Timestamp": str(ts),
                "X-OneHA-Signature": signing.signature(key.encode(), ts, body)})
            answer = conn.getresponse()
            answer.read()
            with lock:
                statuses.append(answer.status)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def heard_by_host(r, prefix: str) -> dict[int, str]:
    """For each host: when the gateway recorded its first and last event (the event log)."""
    times: dict[int, list[float]] = {}
    for entry_id, fields in r.xrange(prefix + "events:log"):
        event = json.loads(fields[b"event"])
        host = int(event["labels"]["host_id"])
        times.setdefault(host, []).append(int(entry_id.split(b"-")[0]) / 1000)
    return {h: f"{len(t)} events heard over {max(t) - min(t):.2f}s" for h, t in times.items()}


class StormStack:
    """`oneha serve` (gunicorn), `oneha worker` and `oneha beat` on the machine's Redis (the
    test's key prefix), one chat receiver; grouped by host, only first messages within the test."""

    def __init__(self, redis_url: str, key_prefix: str, tmp_path, chat: ChatSink):
        import redis

        self.key, self.port, self.prefix = secrets.token_hex(24), local.free_port(), key_prefix
        self.chat, self.logs = chat, tmp_path / "logs"
        self.r = redis.Redis.from_url(redis_url)
        config = {
            "redis_url": redis_url, "key_prefix": key_prefix,
            "public_url": f"http://127.0.0.1:{self.port}",
            "ingest": {"frontends": {"fe1": {"keys": [self.key]}}},
            "receivers": [{"name": "oncall-chat", "urls": [chat.url("hooks/oncall")]}],
            # group_wait far longer than a host's 101 events take to arrive, even on a loaded
            # machine; group_interval longer than the test: only first messages can be sent.
            "route": {"receivers": ["oncall-chat"], "group_by": ["host"], "group_wait": "4s",
                      "group_interval": "1h", "repeat_interval": "4h"},
            "remediation": {"mode": "off"},
            "raft": {"enabled": False}, "reconciler": {"enabled": False},
        }
        self.procs = local.Processes(local.write_config(config, tmp_path / "oneha.yaml"),
                                     self.logs)

    def __enter__(self) -> "StormStack":
        self.procs.oneha("gateway", "serve", "--port", str(self.port), "--workers", "2")
        self.procs.oneha("worker", "worker", "--concurrency", "2")
        self.procs.oneha("beat", "beat")
        wait_ready(f"http://127.0.0.1:{self.port}", 60, self.procs)
        return self

    def __exit__(self, *exc) -> None:
        self.procs.stop_all()

    def logged(self) -> int:
        return self.r.xlen(self.prefix + "events:log")

    def settle(self) -> dict[int, str]:
        """Wait for every host's first message and every event applied; then a little more, so a
        message too many would show. Each host's ingest spread, for the failure message."""
        wait_until(lambda: len(self.chat.messages) >= HOSTS, timeout=180,
                   what=f"{HOSTS} first messages (logs in {self.logs})")
        wait_until(lambda: self.r.xlen(self.prefix + "events:pending") == 0, timeout=60,
                   what="every event applied")
        time.sleep(2.0)  # beat ticks after the storm: nothing more may be sent
        assert self.r.xlen(self.prefix + "events:failed") == 0
        return heard_by_host(self.r, self.prefix)

    def assert_told_once_each_with_all_vms(self, heard: dict[int, str]) -> None:
        titles = [m.title for m in self.chat.messages]
        assert len(titles) == HOSTS, "\n".join(titles)
        told = {}
        for t in titles:
            m = re.search(r"\bnode(\d\d)\b.*\b(\d+) VMs affected", t)
            assert m, t
            told[int(m.group(1))] = int(m.group(2))
        short = {h: n for h, n in told.items() if n != VMS}
        assert not short, (short, {h: heard[h] for h in short}, titles)
        assert sorted(told) == list(range(1, HOSTS + 1)), titles
        assert all(t.startswith("[FIRING]") for t in titles), titles


@pytest.mark.slow
def test_a_storm_of_2020_events_is_20_first_messages_each_naming_all_its_vms(
        redis_url, key_prefix, tmp_path):
    with ChatSink() as chat, StormStack(redis_url, key_prefix, tmp_path, chat) as s:
        statuses = post_all(s.port, s.key, storm())
        assert statuses.count(202) == HOSTS * (VMS + 1), sorted(set(statuses))
        heard = s.settle()
    s.assert_told_once_each_with_all_vms(heard)


@pytest.mark.slow
def test_a_worker_killed_mid_storm_loses_nothing_and_doubles_nothing(
        redis_url, key_prefix, tmp_path):
    """SIGKILL of the whole worker (the applier among its processes) halfway through the storm;
    a new one starts. The killed applier's batch is applied again (its lease expires), groups due
    meanwhile wait for it: still one first message per host, each with all its VMs."""
    with ChatSink() as chat, StormStack(redis_url, key_prefix, tmp_path, chat) as s:
        statuses: list[int] = []
        sender = threading.Thread(target=lambda: statuses.extend(post_all(s.port, s.key,
                                                                          storm())))
        sender.start()
        wait_until(lambda: s.logged() >= HOSTS * (VMS + 1) // 2, timeout=120,
                   what="half the storm recorded")
        s.procs.stop("worker", sig=signal.SIGKILL)
        s.procs.oneha("worker-2", "worker", "--concurrency", "2")
        sender.join(timeout=300)
        assert statuses.count(202) == HOSTS * (VMS + 1), sorted(set(statuses))
        heard = s.settle()
    s.assert_told_once_each_with_all_vms(heard)
