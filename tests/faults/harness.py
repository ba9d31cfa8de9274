"""The rig the fault tests break: real processes, as deployed, and a burst of signed events.

    private redis-server (AOF, appendfsync everysec) ← `oneha serve` (gunicorn, 2 workers)
                                                     ← `oneha worker`, `oneha beat`
    → aiosmtpd SMTP server (mail) and an HTTP chat receiver (chat)

A burst is `hosts` hosts failing, each a HOST ERROR event and then its VMs going UNKNOWN, every
event with its own VM (so an event that never reached its incident is a VM missing from every
incident's objects). Senders behave like the hook sender: a request that fails (a 503, a reset, a
3 s timeout) is sent again with the same body until it is answered 2xx — the gateway's dedup
makes that safe. Grouped by host, with a group_interval longer than any test, each host is
exactly one message per receiver: a second one is a doubled notification.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import secrets
import signal
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import redis

from gateway import local
from gateway.config import settings_from_dict
from gateway.demo import wait_ready
from gateway.domain import signing
from gateway.runtime import Runtime
from gateway.adapters.store.incidents import IncidentStore
from gateway.adapters.store.pending import PendingEvents
from simulator.sinks import ChatSink, SmtpSink
from tests.faults.table import Row
from tests.support.procs import RedisServer, StartStop
from tests.support.samples import b64, host_xml, vm_xml
from tests.support.worker import wait_until

FRONTEND = "fe1"
SENDER_TIMEOUT = 3.0  # what hook_templates/oneha-hook gives a request
RECEIVERS = ("mail", "chat")


def burst_bodies(hosts: int, vms_per_host: int) -> list[bytes]:
    """Host by host: its HOST ERROR, then its VMs going UNKNOWN (VM ids h*1000+v)."""
    bodies = []
    for h in range(1, hosts + 1):
        bodies.append(_body("HOST", h, h))
        bodies += [_body("VM", h * 1000 + v, h) for v in range(vms_per_host)]
    return bodies


def _body(resource: str, oid: int, host_id: int) -> bytes:
    host = f"node{host_id:02d}"
    if resource == "HOST":
        xml, name, state, lcm = host_xml(host_id, host, 3), host, 3, None
    else:
        xml, name, state, lcm = (vm_xml(oid, state=3, lcm_state=16, host=host, host_id=host_id),
                                 f"web-{oid}", 3, 16)
    return json.dumps({
        "resource": resource, "id": oid, "name": name, "state": state, "lcm_state": lcm,
        "state_name": "", "lcm_state_name": None, "xml": b64(xml),
        "hook": f"oneha-{resource.lower()}", "frontend": FRONTEND, "sent_at": time.time(),
        "event_id": uuid.uuid4().hex}).encode()


def object_key(body: bytes) -> str:
    event = json.loads(body)
    return f"{event['resource'].lower()}:{event['id']}"


class Burst:
    """POST `bodies` from `clients` keep-alive connections in a background thread; each body is
    retried until it is acknowledged or `give_up` seconds have passed since the burst began."""

    def __init__(self, port: int, key: str, bodies: list[bytes], clients: int = 8,
                 give_up: float = 240.0):
        self.port, self.key, self.bodies, self.clients = port, key, bodies, clients
        self.give_up = give_up
        self.acknowledged: list[bytes] = []
        self.latencies: list[float] = []  # seconds, of each request answered 2xx
        self.failures = Counter()  # what made a request be sent again: "503", "ConnectionError"
        self._work: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> "Burst":
        for b in self.bodies:
            self._work.put(b)
        self._deadline = time.monotonic() + self.give_up
        self._threads = [threading.Thread(target=self._client, daemon=True)
                         for _ in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    @property
    def acked(self) -> int:
        return len(self.acknowledged)

    def join(self) -> "Burst":
        for t in self._threads:
            t.join()
        return self

    def _client(self) -> None:
        conn = None
        while True:
            try:
                body = self._work.get_nowait()
            except queue.Empty:
                break
            while time.monotonic() < self._deadline:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=SENDER_TIMEOUT)
                try:
                    sent_at = time.perf_counter()
                    status = self._post(conn, body)
                    took = time.perf_counter() - sent_at
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = None
                    self._failed(type(exc).__name__)
                    continue
                if 200 <= status < 300:
                    with self._lock:
                        self.acknowledged.append(body)
                        self.latencies.append(took)
                    break
                self._failed(str(status))
        if conn is not None:
            conn.close()

    def _post(self, conn: http.client.HTTPConnection, body: bytes) -> int:
        ts = int(time.time())
        conn.request("POST", "/v1/events", body=body, headers={
            "Content-Type": "application/json", "X-OneHA-Frontend": FRONTEND,
            "X-OneHA-Timestamp": str(ts),
            "X-OneHA-Signature": signing.signature(self.key.encode(), ts, body)})
        answer = conn.getresponse()
        answer.read()
        return answer.status

    def _failed(self, why: str) -> None:
        with self._lock:
            self.failures[why] += 1
        time.sleep(0.1)  # the hook sender backs off too (and then spools)


class Rig(StartStop):
    """Everything running; `stop()` (or the context manager) ends it all."""

    def __init__(self, tmp_path: Path, *, redis_url: str | None = None,
                 notify: dict | None = None, **config):
        self.base = Path(tmp_path)
        self.redis_server: RedisServer | None = None
        self._redis_url = redis_url
        self.notify = {"max_attempts": 30, "backoff_base": "1s", "backoff_max": "3s",
                       "send_timeout": "5s", **(notify or {})}
        self.extra = config
        self.smtp = self.chat = self.procs = None

    def start(self) -> "Rig":
        if self._redis_url is None:
            self.redis_server = RedisServer(self.base / "redis", appendonly=True).start()
            self._redis_url = self.redis_server.url
        self.smtp, self.chat = SmtpSink().start(), ChatSink().start()
        self.port = local.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = secrets.token_hex(24)
        self.config = {
            "redis_url": self._redis_url, "key_prefix": f"faults-{uuid.uuid4().hex[:8]}:",
            "public_url": self.url,
            "ingest": {"frontends": {FRONTEND: {"keys": [self.key]}}},
            "receivers": [
                {"name": "mail", "urls": [self.smtp.url(to="oncall@example.com")]},
                {"name": "chat", "urls": [self.chat.url("hooks/oncall")]}],
            "notify": self.notify,
            # Longer than a burst takes, even through a fault: one message per host, then nothing.
            "route": {"receivers": ["mail", "chat"], "group_by": ["host"], "group_wait": "2s",
                      "group_interval": "1h", "repeat_interval": "4h"},
            "remediation": {"mode": "off"},
            "raft": {"enabled": False}, "reconciler": {"enabled": False},
            **self.extra,
        }
        path = local.write_config(self.config, self.base / "oneha.yaml")
        self.procs = local.Processes(path, self.base / "logs",
                                     env={"PYTHONUNBUFFERED": "1"})
        self.procs.oneha("gateway", "serve", "--port", str(self.port), "--workers", "2")
        self.procs.oneha("worker", "worker", "--concurrency", "2")
        self.procs.oneha("beat", "beat")
        wait_ready(self.url, 60, self.procs)
        self.runtime = Runtime.from_settings(settings_from_dict(self.config, env={}))
        return self

    def stop(self) -> None:
        if self.procs:
            self.procs.stop_all()
        for sink in (self.smtp, self.chat):
            if sink:
                sink.stop()
        if self.redis_server:
            self.redis_server.stop(kill=True)

    # -- faults --------------------------------------------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL a process and its group (a gunicorn master and its workers, a Celery worker
        and its pool), as the OOM killer would; `revive()` starts it again."""
        proc = self.procs.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def revive(self) -> list[tuple[str, int]]:
        """What `oneha up` does for an exited child: start it again with the same command."""
        restarted = self.procs.restart_exited()
        if any(name == "gateway" for name, _ in restarted):
            wait_ready(self.url, 60, self.procs)
        return restarted

    def burst(self, hosts: int, vms_per_host: int, clients: int = 8) -> Burst:
        return Burst(self.port, self.key, burst_bodies(hosts, vms_per_host), clients).start()

    # -- outcome -------------------------------------------------------------------------------
    def redis(self) -> redis.Redis:
        return self.runtime.redis

    def applied(self) -> bool:
        """Nothing recorded is waiting to be applied (and nothing failed to apply)."""
        pending = PendingEvents.of(self.runtime)
        r = self.redis()
        return r.xlen(pending.stream) == 0

    def failed_to_apply(self) -> int:
        return self.redis().xlen(PendingEvents.of(self.runtime).failed_key)

    def incident_objects(self) -> set[str]:
        """Every object of every incident (a VM incident absorbed by its host's keeps its own)."""
        keys: set[str] = set()
        for incident in IncidentStore(self.runtime).list(open_only=False, limit=100_000):
            keys.update(incident.objects)
        return keys

    def firing_by_host(self, receiver: str) -> Counter:
        """How many [FIRING] messages `receiver` accepted per host (nodeNN in the headline)."""
        titles = ([m.subject for m in self.smtp.messages] if receiver == "mail"
                  else [m.title for m in self.chat.messages])
        counts = Counter()
        for title in titles:
            m = re.search(r"\bnode(\d+)\b", title)
            counts[m.group(1) if m else title] += 1
        return counts

    def settle(self, hosts: int, timeout: float = 180.0, quiet: float = 3.0) -> None:
        """Until every event is applied and every host was told on both receivers; then a quiet
        moment (several beat ticks and delivery retries) in which a doubled message would come."""
        want = {f"{h:02d}" for h in range(1, hosts + 1)}
        wait_until(lambda: self.applied() and all(
            want <= set(self.firing_by_host(r)) for r in RECEIVERS), timeout, interval=0.2,
            what=f"every event applied and {hosts} hosts told on both receivers "
                 f"(logs in {self.base / 'logs'})")
        deadline = time.monotonic() + quiet
        wait_until(lambda: time.monotonic() > deadline, quiet + 5, what="a quiet moment")

    def row(self, fault: str, sent: int, acknowledged: list[bytes],
            actions_doubled: int | None = None) -> Row:
        have = self.incident_objects()
        lost = sum(object_key(b) not in have for b in acknowledged) + self.failed_to_apply()
        doubled = sum(n - 1 for r in RECEIVERS for n in self.firing_by_host(r).values() if n > 1)
        notified = len(self.smtp.messages) + len(self.chat.messages)
        return Row(fault, sent, len(acknowledged), notified, lost, doubled, actions_doubled)


# -- the real sender ---------------------------------------------------------------------------
def hook_tokens(hosts: int, vms_per_host: int) -> list[tuple[str, str]]:
    """(object key, base64 XML as oned gives the hook) for the same shape of burst."""
    out = []
    for h in range(1, hosts + 1):
        out.append((f"host:{h}", b64(host_xml(h, f"node{h:02d}", 3))))
        out += [(f"vm:{h * 1000 + v}", b64(vm_xml(h * 1000 + v, state=3, lcm_state=16,
                                                    host=f"node{h:02d}", host_id=h)))
                for v in range(vms_per_host)]
    return out


class Sender:
    """hook_templates/oneha-hook as a front-end runs it: one process per event, spooling what it
    cannot deliver, `--flush` replaying the spool."""

    def __init__(self, rig: Rig, spool: Path):
        from gateway.adapters.hooks import sender_path
        self.path = str(sender_path())
        self.spool = Path(spool)
        self.env = {**os.environ, "ONEHA_URLS": rig.url, "ONEHA_KEY": rig.key,
                    "ONEHA_FRONTEND": FRONTEND, "ONEHA_SPOOL_DIR": str(self.spool),
                    "ONEHA_TIMEOUT": str(int(SENDER_TIMEOUT)),
                    "ONEHA_HOOK_CONFIG": str(self.spool.parent / "no-such.conf")}

    def run(self, *args: str) -> int:
        import subprocess
        import sys
        return subprocess.run([sys.executable, self.path, *args], env=self.env, timeout=60,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode

    def spooled(self) -> list[str]:
        return sorted(p.name for p in self.spool.glob("*.json")) if self.spool.exists() else []

    def rejected(self) -> list[str]:
        d = self.spool / "rejected"
        return sorted(p.name for p in d.iterdir()) if d.exists() else []
