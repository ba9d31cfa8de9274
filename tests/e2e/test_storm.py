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


@pytest.mark.slow
def test_a_storm_of_2020_events_is_20_first_messages_each_naming_all_its_vms(
        redis_url, key_prefix, tmp_path):
    import redis

    key = secrets.token_hex(24)
    port = local.free_port()
    with ChatSink() as chat:
        config = {
            "redis_url": redis_url, "key_prefix": key_prefix,
            "public_url": f"http://127.0.0.1:{port}",
            "ingest": {"frontends": {"fe1": {"keys": [key]}}},
            "receivers": [{"name": "oncall-chat", "urls": [chat.url("hooks/oncall")]}],
            # group_wait far longer than a host's 101 events take to arrive, even on a loaded
            # machine; group_interval longer than the test: only first messages can be sent.
            "route": {"receivers": ["oncall-chat"], "group_by": ["host"], "group_wait": "4s",
                      "group_interval": "1h", "repeat_interval": "4h"},
            "remediation": {"mode": "off"},
            "raft": {"enabled": False}, "reconciler": {"enabled": False},
        }
        path = local.write_config(config, tmp_path / "oneha.yaml")
        procs = local.Processes(path, tmp_path / "logs")
        try:
            procs.oneha("gateway", "serve", "--port", str(port), "--workers", "2")
            procs.oneha("worker", "worker", "--concurrency", "2")
            procs.oneha("beat", "beat")
            wait_ready(f"http://127.0.0.1:{port}", 60, procs)

            statuses = post_all(port, key, storm())
            assert statuses.count(202) == HOSTS * (VMS + 1), sorted(set(statuses))

            r = redis.Redis.from_url(redis_url)
            wait_until(lambda: len(chat.messages) >= HOSTS, timeout=180,
                       what=f"{HOSTS} first messages (logs in {tmp_path / 'logs'})")
            wait_until(lambda: r.xlen(key_prefix + "events:pending") == 0, timeout=60,
                       what="every event applied")
            time.sleep(2.0)  # beat ticks after the storm: nothing more may be sent
            heard = heard_by_host(r, key_prefix)
        finally:
            procs.stop_all()

        titles = [m.title for m in chat.messages]
        assert len(titles) == HOSTS, "\n".join(titles)
        told = {}
        for t in titles:
            m = re.search(r"\bnode(\d\d)\b.*\b(\d+) VMs affected", t)
            assert m, t
            told[int(m.group(1))] = int(m.group(2))
        short = {h: n for h, n in told.items() if n != VMS}
        assert not short, (short, {h: heard[h] for h in short}, titles)
        assert all(m.title.startswith("[FIRING]") for m in chat.messages), titles
