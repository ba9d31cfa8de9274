"""Storm speed, side by side: Prometheus Alertmanager 0.25 and oneha on the same storm and sink.

Issue 11. One run on loopback: each system gets a fresh start per storm (a new AM data dir, a new
private Redis) and the same storm — for each host, its HOST ERROR event then one VM ACTIVE/UNKNOWN
event per VM — sent one event per POST by 8 keep-alive clients (2 load processes x 4 threads,
each connection kept for the whole storm and spread evenly over gunicorn's workers, see
bench/ingest.py `balanced_connections`) that take events from one shared counter in storm order.
Every request is built before the clock starts. Both systems notify the same HTTP sink (a stdlib
server here, stamping each POST as it arrives). Same routing for both: group_by [host],
group_wait 1s, group_interval 5m, repeat_interval 4h, one receiver.
  Alertmanager — Debian's `prometheus-alertmanager` (`make bench` installs it), never its
                 service: own ports, clustering off, config and storage in a temp dir; one alert
                 per POST to /api/v2/alerts (labels alertname, host and, for VMs, vm); a webhook
                 receiver pointing at the sink.
  oneha        — the real processes on a private redis-server (AOF everysec): `oneha serve`
                 (gunicorn, 2 workers), `oneha worker`, `oneha beat`; events are the signed
                 bodies of the real sender (hook_templates/oneha-hook: build_event, dumps, sign)
                 over realistic XSD-valid XML (tests/support/samples.py); one receiver whose
                 apprise URL (json://) posts to the sink. Alerting only, the settings `oneha up`
                 uses without OpenNebula (gateway.local.without_opennebula: remediation off, no
                 Raft monitor, no reconciler) — but with an OpenNebula: the simulator (its own
                 process) holding the storm's hosts and VMs, crashed. oneha still plans with
                 remediation off (it reads the host pool and the extended VM pool per plan), and
                 with no endpoint at all each planning task spends 2-4 s retrying it while
                 holding one of the worker's two processes: one event at rest then takes 2.5-4 s.
Before each storm both get three warm-up events at once (hosts of their own; their messages
awaited, not counted): a storm hits a system that has been running, not one still importing its
modules (oneha's first delivery in a worker process imports apprise: 0.9-2.4 s here).
The code measured is the tree this file is in (oneha's processes start in it).
Measured per system and storm:
  accepted/s        events / (first POST -> last 2xx)
  all hosts after   first POST -> the last host's first message
  per-host p99      over hosts: (that host's last event acknowledged -> its first message)
  messages          first messages (one per host), duplicates (more messages for one host before
                    its group_interval is over, seen until --settle seconds after the last first
                    message; later ones are the group's next news), and whether each first
                    message covers all its host's VMs — AM: the alerts in the webhook payload;
                    oneha: the VM names in the text, or, since a chat message names 3 and counts
                    the rest, the "N affected" count (`--strict-names` demands every name)
  at rest           a fresh host, nothing else going on: event POSTed -> its message (max of
                    --rest-samples, each after a random pause so the beat's phase varies)
  costs             CPU seconds per event of the AM process / the oneha worker's process tree
                    (psutil, before/after), Redis commands per event (INFO commandstats delta of
                    the private Redis, all clients), peak RSS of every process (VmHWM)
Targets (exit 1 when one is missed): on the 2,020-event storm, oneha's all-hosts time <= 1.5x
Alertmanager's and its per-host p99 <= group_wait + 1 s; on the 10,050-event storm (--big) the
same ratio; at rest <= group_wait + 0.2 s; on every storm exactly one first message per host,
each covering all its VMs, and no duplicate. Every wait is bounded: a stuck system fails the run
with a message saying what was missing. All on the same 2 CPUs as the load generator.

    .venv/bin/python bench/alertmanager.py [--big] [--repeat N] [--storms 10x50,20x100] [--keep]
"""

# No `from __future__ import annotations`: the dataclasses below must build when this file is
# loaded without being registered in sys.modules (tests/unit/test_benches_import.py does so).

import argparse
import contextlib
import importlib.machinery
import importlib.util
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench.ingest import Connection, balanced_connections, worker_pids  # noqa: E402
from simulator.sinks import ChatPost, ChatSink  # noqa: E402

KEY = "bench-am-key-0123456789abcdef"
FRONTEND = "fe1"
GROUP_WAIT, GROUP_INTERVAL = 1.0, 300.0
ROUTE = {"group_by": ["host"], "group_wait": "1s", "group_interval": "5m", "repeat_interval": "4h"}
TARGETS = {"ratio": 1.5, "p99": GROUP_WAIT + 1.0, "rest": GROUP_WAIT + 0.2}
DEFAULT_STORMS = ((10, 50), (20, 100))
BIG_STORM = (50, 200)
TIMED_STORMS = {(20, 100): ("ratio", "p99"), (50, 200): ("ratio",)}  # which targets apply where
AM_BINARY = "/usr/bin/prometheus-alertmanager"
CONNECTIONS, LOAD_PROCS = 8, 2


# --- the storm ------------------------------------------------------------------------------------
# Names that cannot be read inside one another: "bhost07" is not in "bvm07-001".

HOST_RE = re.compile(r"\bbhost(\d+)\b")
VM_RE = re.compile(r"\bbvm\d+-\d+\b")


def host_name(h: int) -> str:
    return f"bhost{h:02d}"


def vm_name(h: int, v: int) -> str:
    return f"bvm{h:02d}-{v:03d}"


@dataclass(frozen=True)
class Storm:
    hosts: int
    vms: int  # per host
    first_host: int = 0

    @property
    def label(self) -> str:
        return f"{self.hosts} hosts x {self.vms} VMs ({self.events:,} events)"

    @property
    def events(self) -> int:
        return self.hosts * (1 + self.vms)

    def host_indexes(self) -> range:
        return range(self.first_host, self.first_host + self.hosts)

    def order(self) -> list[tuple[int, int | None]]:
        """(host, None) for a host's event, (host, vm) for a VM's: each host, then its VMs."""
        out: list[tuple[int, int | None]] = []
        for h in self.host_indexes():
            out.append((h, None))
            out.extend((h, v) for v in range(self.vms))
        return out

    def vm_names(self) -> dict[str, set[str]]:
        return {host_name(h): {vm_name(h, v) for v in range(self.vms)} for h in self.host_indexes()}


def _sender():
    """The real hook sender (a script, not a module), loaded as the sender tests load it."""
    loader = importlib.machinery.SourceFileLoader(
        "oneha_hook_bench", str(ROOT / "hook_templates" / "oneha-hook"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def oneha_requests(storm: Storm, port: int, ids: dict[str, dict[str, int]]) -> list[bytes]:
    """Each event exactly as oneha-hook would POST it (its own build_event, dumps and sign), over
    keep-alive instead of its one connection per run; `ids` are the simulator's object ids."""
    from tests.support.samples import b64, host_xml, vm_xml
    sender = _sender()
    now = time.time()
    ts = int(now)
    out = []
    for h, v in storm.order():
        hid = ids["hosts"][host_name(h)]
        if v is None:
            xml = host_xml(hid, host_name(h), 3, mon_time=ts,
                           vm_ids=tuple(ids["vms"][vm_name(h, i)] for i in range(storm.vms)))
        else:
            xml = vm_xml(ids["vms"][vm_name(h, v)], vm_name(h, v), 3, 16, host=host_name(h),
                         host_id=hid, last_poll=ts)
        event = sender.build_event(b64(xml), {"frontend": FRONTEND}, now=now)
        body = sender.dumps(event).encode("utf-8")
        head = (f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-OneHA-Timestamp: {ts}\r\nX-OneHA-Frontend: {FRONTEND}\r\n"
                f"X-OneHA-Signature: {sender.sign(KEY, body, ts)}\r\n\r\n")
        out.append(head.encode() + body)
    return out


def am_requests(storm: Storm, port: int) -> list[bytes]:
    """One alert per POST to /api/v2/alerts. No startsAt: Alertmanager then takes the time it
    receives the alert. (An alert that started more than group_wait ago is flushed at once — a
    startsAt stamped when the bodies were built, seconds before the storm, would make Alertmanager
    skip its group_wait.)"""
    out = []
    for h, v in storm.order():
        labels = ({"alertname": "HostError", "host": host_name(h)} if v is None else
                  {"alertname": "VmUnknown", "host": host_name(h), "vm": vm_name(h, v)})
        body = json.dumps([{"labels": labels}]).encode()
        head = (f"POST /api/v2/alerts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        out.append(head.encode() + body)
    return out


# --- the sink -------------------------------------------------------------------------------------

class StampedSink(ChatSink):
    """The chat sink of the tests, noting when each POST arrived (time.time(), after its body)."""

    def __init__(self):
        super().__init__()
        self.arrived: list[tuple[float, ChatPost]] = []

    def _record(self, post: ChatPost) -> int:
        at = time.time()
        status = super()._record(post)
        with self._cond:
            self.arrived.append((at, post))
        return status

    def posts(self, path: str) -> list[tuple[float, ChatPost]]:
        with self._cond:
            return [(t, p) for t, p in self.arrived if p.path == path]


@dataclass
class Told:
    """What one message said about one host."""

    at: float
    host: str | None
    names: set[str]
    count: int | None  # VMs the message says are affected


def told_alertmanager(at: float, body: dict) -> Told:
    alerts = body.get("alerts") or []
    names = {a["labels"]["vm"] for a in alerts if "vm" in (a.get("labels") or {})}
    host = (body.get("groupLabels") or {}).get("host")
    return Told(at, host, names, len(names))


_COUNT_RES = (re.compile(r"(\d+) VMs? affected"), re.compile(r"(\d+) affected"))


def told_oneha(at: float, body: dict) -> Told:
    title, text = str(body.get("title", "")), str(body.get("message", ""))
    m = HOST_RE.search(title) or HOST_RE.search(text)
    count = None
    for rx in _COUNT_RES:
        found = rx.search(title + "\n" + text)
        if found:
            count = int(found.group(1))
            break
    return Told(at, f"bhost{m.group(1)}" if m else None, set(VM_RE.findall(title + "\n" + text)),
                count)


def covers(told: Told, vms: set[str], strict_names: bool) -> bool:
    """The message accounts for every VM of its host: each named — or, unless `strict_names`,
    counted (the exact number) while every name it does give is one of them."""
    if told.names == vms:
        return True
    return not strict_names and told.names <= vms and told.count == len(vms)


# --- the load: forked processes, one shared counter -----------------------------------------------

def _load_proc(port: int, workers: list[int], n_conns: int, requests: list[bytes], counter,
               start, ready, out) -> None:
    socket.setdefaulttimeout(30)  # a stuck server fails the run, it does not hang it
    try:
        conns = balanced_connections(port, workers, n_conns)
    except Exception as exc:  # noqa: BLE001 — reported to the parent, which fails the run
        ready.put(f"could not open {n_conns} connections to :{port}: {exc!r}")
        return
    Connection.reconnects = 0
    ready.put("ready")
    if not start.wait(120):
        return
    import threading
    sent: list[tuple[int, float, float, int]] = []
    errors: list[str] = []

    def run(conn: Connection) -> None:
        mine = []
        try:
            while True:
                with counter.get_lock():
                    n = counter.value
                    counter.value = n + 1
                if n >= len(requests):
                    break
                t = time.time()
                code = conn.roundtrip(requests[n])
                mine.append((n, t, time.time(), code))
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
        sent.extend(mine)
    threads = [threading.Thread(target=run, args=(c,)) for c in conns]
    wall0, cpu0 = time.monotonic(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    busy = (time.process_time() - cpu0) / max(1e-9, time.monotonic() - wall0)
    for c in conns:
        c.close()
    out.put((sent, errors, Connection.reconnects, busy))


@dataclass
class Sent:
    send: list[float]  # per request, in storm order
    ack: list[float]
    status: list[int]
    reconnects: int
    load_busy: tuple = ()  # per load process: CPU seconds / wall seconds (1.0: it was the limit)

    @property
    def first(self) -> float:
        return min(self.send)

    @property
    def last_ack(self) -> float:
        return max(self.ack)


def blast(port: int, workers: list[int], requests: list[bytes], timeout: float) -> Sent:
    """All `requests` over CONNECTIONS keep-alive connections from LOAD_PROCS processes."""
    ctx = multiprocessing.get_context("fork")  # the requests are shared, not copied or pickled
    counter, start = ctx.Value("q", 0), ctx.Event()
    ready, out = ctx.Queue(), ctx.Queue()
    per = [CONNECTIONS // LOAD_PROCS + (i < CONNECTIONS % LOAD_PROCS) for i in range(LOAD_PROCS)]
    procs = [ctx.Process(target=_load_proc, daemon=True,
                         args=(port, workers, n, requests, counter, start, ready, out))
             for n in per]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            word = ready.get(timeout=60)
            if word != "ready":
                raise RuntimeError(word)
        start.set()
        results = [out.get(timeout=timeout) for _ in procs]
    except Exception as exc:
        if isinstance(exc, RuntimeError):
            raise
        raise RuntimeError(f"the load on :{port} did not finish within {timeout:.0f} s") from exc
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    n = len(requests)
    send, ack, status = [0.0] * n, [0.0] * n, [0] * n
    errors, reconnects, seen = [], 0, 0
    for rows, errs, rc, _busy in results:
        errors += errs
        reconnects += rc
        for i, t0, t1, code in rows:
            send[i], ack[i], status[i] = t0, t1, code
            seen += 1
    if errors or seen != n:
        raise RuntimeError(f"{n - seen} of {n} requests to :{port} not answered: {errors[:3]}")
    return Sent(send, ack, status, reconnects, tuple(r[3] for r in results))


# --- the two systems ------------------------------------------------------------------------------

def _vm_hwm(pid: int) -> int:
    """Peak resident memory of a live process (bytes), as the kernel kept it: VmHWM."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def _tree(pid: int) -> list[int]:
    with contextlib.suppress(psutil.Error):
        return [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
    return []


def _wait_http(url: str, timeout: float, what: str, alive=lambda: True, accept=lambda b: True):
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                body = resp.read()
                if resp.status == 200 and accept(body):
                    return
                last = f"{resp.status} {body[:200]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s ({url}: {last})")


class Alertmanager:
    name = "Alertmanager"

    def __init__(self, workdir: Path, sink_url: str):
        self.dir = workdir
        self.dir.mkdir(parents=True)
        self.sink_url = sink_url
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Alertmanager":
        from tests.support.procs import free_port
        if not os.access(AM_BINARY, os.X_OK):
            raise RuntimeError(f"{AM_BINARY} is missing: `make bench` installs it "
                               "(apt-get install prometheus-alertmanager)")
        config = {"route": {"receiver": "sink", **ROUTE},
                  "receivers": [{"name": "sink", "webhook_configs": [
                      {"url": self.sink_url, "send_resolved": False}]}]}
        (self.dir / "alertmanager.yml").write_text(json.dumps(config))  # JSON is YAML
        self.port = free_port()
        self.log = open(self.dir / "alertmanager.log", "ab")
        self.proc = subprocess.Popen(
            [AM_BINARY, f"--config.file={self.dir / 'alertmanager.yml'}",
             f"--storage.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--cluster.listen-address=", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_http(f"http://127.0.0.1:{self.port}/-/ready", 30, "alertmanager",
                   alive=lambda: self.proc.poll() is None)
        return self

    def workers(self) -> list[int]:
        return [self.proc.pid]

    def requests(self, storm: Storm) -> list[bytes]:
        return am_requests(storm, self.port)

    def cpu(self) -> float:
        return _cpu([self.proc.pid])

    def redis_calls(self) -> None:
        return None

    def helper_cpu(self) -> None:
        return None

    def ingest_cpu(self) -> None:
        return None  # the AM process does all: `cpu`

    def peak_rss(self) -> dict[str, list[int]]:
        return {"alertmanager": [_vm_hwm(self.proc.pid)]}

    told = staticmethod(told_alertmanager)  # what one message said (analyse needs the class only)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        with contextlib.suppress(AttributeError):
            self.log.close()


def _simulator_proc(hosts: list[tuple[str, list[str]]], ready, stop, log: str) -> None:
    """The simulated cloud behind oneha, in a process of its own (its XML-RPC threads must not
    share a GIL with the sink's clock): the storm's hosts with their VMs, every host crashed —
    ERROR, its VMs UNKNOWN, as the events say — before the storm starts. Its complaints (a
    client that gave up on a slow answer: BrokenPipe) go to `log`."""
    sys.stderr = open(log, "a")
    from simulator import CloudSpec, HostSpec, Simulator, VmSpec
    spec = CloudSpec(
        hosts=[HostSpec(name, cpu=100 * (len(vms) + 8), memory_mb=1024 * (len(vms) + 8))
               for name, vms in hosts],
        vms=[VmSpec(vm, host=name, memory_mb=512) for name, vms in hosts for vm in vms],
        frontends=1, monitoring_interval=0.5, sched_interval=5.0)
    try:
        sim = Simulator(spec, control_port=None).start()
    except Exception as exc:  # noqa: BLE001 — said to the parent, which fails the run
        ready.put(f"the simulator did not start: {exc!r}")
        return
    try:
        for h in sim.hosts():
            sim.crash_host(h["id"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(h["state_name"] == "ERROR" for h in sim.hosts()) and all(
                    v["lcm_state_name"] == "UNKNOWN" for v in sim.vms()):
                break
            time.sleep(0.2)
        else:
            ready.put("the simulated hosts did not all reach ERROR within 60 s")
            return
        ready.put({"endpoints": sim.endpoints, "session": sim.session,
                   "hosts": {h["name"]: h["id"] for h in sim.hosts()},
                   "vms": {v["name"]: v["id"] for v in sim.vms()}})
        stop.wait(3600)
    finally:
        sim.stop()


class Oneha:
    name = "oneha"

    def __init__(self, workdir: Path, sink_url: str, cloud: list[tuple[str, list[str]]]):
        self.dir = workdir
        self.dir.mkdir(parents=True)
        self.sink_url, self.cloud = sink_url, cloud
        self.procs = self.redis = self.sim = None

    def start(self) -> "Oneha":
        import redis

        from gateway import local
        from tests.support.procs import RedisServer
        ctx = multiprocessing.get_context("spawn")
        ready, self._sim_stop = ctx.Queue(), ctx.Event()
        (self.dir / "logs").mkdir(exist_ok=True)
        self.sim = ctx.Process(target=_simulator_proc, daemon=True, args=(
            self.cloud, ready, self._sim_stop, str(self.dir / "logs" / "simulator.log")))
        self.sim.start()
        got = ready.get(timeout=180)
        if isinstance(got, str):
            raise RuntimeError(got)
        self.ids = got
        self.redis = RedisServer(self.dir / "redis", appendonly=True).start()
        self.client = redis.Redis.from_url(self.redis.url)
        self.port = local.free_port()
        url = f"http://127.0.0.1:{self.port}"
        # Alerting only (remediation off, no Raft monitor, no reconciler), as `oneha up` runs
        # without OpenNebula — but with one: planning still reads it (see the docstring).
        raw = local.without_opennebula({
            "redis_url": self.redis.url, "key_prefix": "oneha:", "public_url": url,
            "secret_key": secrets.token_hex(16),
            "ingest": {"frontends": {FRONTEND: {"keys": [KEY]}}},
            "opennebula": {"endpoints": got["endpoints"], "session": got["session"]},
            "receivers": [{"name": "sink", "urls": [self.sink_url]}],
            "route": {"receiver": "sink", **ROUTE}})
        path = local.write_private_config(raw, self.dir / "oneha.yaml")
        self.procs = local.Processes(path, self.dir / "logs")
        self.procs.oneha("gateway", "serve", "--port", str(self.port), "--workers", "2")
        self.procs.oneha("worker", "worker")
        self.procs.oneha("beat", "beat")
        alive = lambda: all(p.poll() is None for p in self.procs.procs.values())  # noqa: E731
        _wait_http(url + "/readyz", 60, "oneha (gateway, worker)", alive=alive,
                   accept=lambda b: bool(json.loads(b).get("workers")))
        return self

    def workers(self) -> list[int]:
        return worker_pids(self.procs.procs["gateway"])

    def requests(self, storm: Storm) -> list[bytes]:
        return oneha_requests(storm, self.port, self.ids)

    def cpu(self) -> float:
        return _cpu(_tree(self.procs.procs["worker"].pid))

    def helper_cpu(self) -> float:
        """CPU seconds of the simulated OpenNebula: it shares our 2 CPUs, a real one would not."""
        return _cpu([self.sim.pid])

    def ingest_cpu(self) -> float:
        """CPU seconds of the gateway (gunicorn's arbiter and workers) and of Redis."""
        return _cpu(_tree(self.procs.procs["gateway"].pid) + [self.redis.proc.pid])

    def redis_calls(self) -> dict[str, int]:
        return {k.removeprefix("cmdstat_"): v["calls"]
                for k, v in self.client.info("commandstats").items()}

    def peak_rss(self) -> dict[str, list[int]]:
        gw = self.procs.procs["gateway"].pid
        return {"gateway": [_vm_hwm(p) for p in _tree(gw)[1:]],
                "worker": [_vm_hwm(p) for p in _tree(self.procs.procs["worker"].pid)],
                "beat": [_vm_hwm(p) for p in _tree(self.procs.procs["beat"].pid)],
                "redis": [_vm_hwm(self.redis.proc.pid)]}

    told = staticmethod(told_oneha)  # what one message said (the class is enough: see analyse)

    def stop(self) -> None:
        if self.procs is not None:
            self.procs.stop_all()
        if self.redis is not None:
            self.redis.stop(kill=True)
        if self.sim is not None:
            self._sim_stop.set()
            self.sim.join(timeout=15)
            if self.sim.is_alive():
                self.sim.kill()


# --- one storm, one system ------------------------------------------------------------------------

@dataclass
class Result:
    system: str
    storm: Storm
    accepted_s: float = 0.0
    all_hosts_s: float | None = None
    p99_s: float | None = None
    first: int = 0
    duplicates: int = 0  # more messages for a host within group_interval of its first
    updates: int = 0  # messages group_interval or more after a host's first: the group grew
    incomplete: list[str] = field(default_factory=list)  # hosts whose first message misses VMs
    missing: list[str] = field(default_factory=list)  # hosts never told
    cpu_ms: float | None = None  # per event
    ingest_cpu_ms: float | None = None  # per event: oneha's gateway and Redis
    helper_cpu_s: float | None = None  # the simulated OpenNebula's CPU seconds in the storm
    timed_out: float | None = None  # seconds waited for every host's first message, in vain
    redis_per_event: float | None = None
    redis_top: list[tuple[str, float]] = field(default_factory=list)
    rss: dict[str, list[int]] = field(default_factory=dict)
    reconnects: int = 0
    load_busy: tuple = ()
    error: str = ""
    rep: int = 0  # which repetition: ratios pair the two systems of one repetition

    @property
    def messages(self) -> int:
        return self.first + self.duplicates + self.updates


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank: the smallest value with at least q of them at or below it."""
    values = sorted(values)
    return values[max(0, min(len(values) - 1, -(-int(q * 100) * len(values) // 100) - 1))]


def firsts(system, posts: list[tuple[float, ChatPost]], hosts: set[str]) -> dict[str, list[Told]]:
    """Per host of `hosts`, every message that was about it, in arrival order."""
    out: dict[str, list[Told]] = {h: [] for h in hosts}
    for at, post in sorted(posts, key=lambda x: x[0]):
        told = system.told(at, post.body)
        if told.host in out:
            out[told.host].append(told)
    return out


def analyse(system, storm: Storm, sent: Sent, posts, strict_names: bool) -> Result:
    res = Result(system.name, storm, reconnects=sent.reconnects, load_busy=sent.load_busy)
    bad = {s for s in sent.status if not 200 <= s < 300}
    if bad:
        res.error = f"answers other than 2xx: {sorted(bad)}"
    res.accepted_s = storm.events / (sent.last_ack - sent.first)
    last_ack: dict[str, float] = {}
    for (h, _v), t in zip(storm.order(), sent.ack):
        last_ack[host_name(h)] = max(last_ack.get(host_name(h), 0.0), t)
    vms = storm.vm_names()
    by_host = firsts(system, posts, set(vms))
    res.missing = sorted(h for h, told in by_host.items() if not told)
    told_first = {h: told[0] for h, told in by_host.items() if told}
    res.first = len(told_first)
    # A message group_interval after the first is the group's next news (a storm that outlasts
    # group_interval gets one), not a duplicate; 1 s of slack for the flush's own latency.
    later = [t.at - told[0].at for told in by_host.values() for t in told[1:]]
    res.duplicates = sum(1 for dt in later if dt < GROUP_INTERVAL - 1.0)
    res.updates = len(later) - res.duplicates
    res.incomplete = sorted(h for h, t in told_first.items() if not covers(t, vms[h], strict_names))
    if told_first and not res.missing:
        res.all_hosts_s = max(t.at for t in told_first.values()) - sent.first
        res.p99_s = percentile([t.at - last_ack[h] for h, t in told_first.items()], 0.99)
    return res


def wait_told(sink: StampedSink, path: str, system, hosts: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        told = {system.told(at, p.body).host for at, p in sink.posts(path)}
        if hosts <= told:
            return
        time.sleep(0.02)
    told = {system.told(at, p.body).host for at, p in sink.posts(path)}
    missing = sorted(hosts - told)
    raise TimeoutError(f"{system.name}: no message for {len(missing)} of {len(hosts)} hosts "
                       f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}) after "
                       f"{timeout:.0f} s")


def warm_up(system, sink: StampedSink, path: str) -> None:
    """One event for each of a few hosts of their own, sent at once, their messages awaited:
    lazy imports and first connections (in every worker process, as far as they spread) are
    paid before the clock starts, as on a system that has been running."""
    import threading
    threads = [threading.Thread(target=blast_one, args=(system, Storm(1, 0, first_host=h)))
               for h in WARM_HOSTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_told(sink, path, system, {host_name(h) for h in WARM_HOSTS}, 60)


def blast_one(system, storm: Storm) -> float:
    """The storm's single request over one fresh connection; the time it was sent."""
    [request] = system.requests(storm)
    conn = Connection(system.port)
    try:
        t = time.time()
        status = conn.roundtrip(request)
    finally:
        conn.close()
    if not 200 <= status < 300:
        raise RuntimeError(f"{system.name} answered {status} to a single event")
    return t


def run_storm(kind, storm: Storm, sink: StampedSink, workdir: Path, args, tag: str) -> Result:
    path = f"/{kind.__name__.lower()}-{tag}"
    system = _make(kind, workdir / tag / kind.__name__, sink, path, storm)
    try:
        system.start()
        warm_up(system, sink, path)
        requests = system.requests(storm)
        workers = system.workers()
        cpu0, calls0, helper0 = system.cpu(), system.redis_calls(), system.helper_cpu()
        ingest0 = system.ingest_cpu()
        timeout = args.timeout or 60 + storm.events / 10
        sent = blast(system.port, workers, requests, timeout)
        hosts = set(storm.vm_names())
        error = ""
        try:
            wait_told(sink, path, system, hosts, max(1.0, timeout - (time.time() - sent.first)))
            time.sleep(args.settle)
        except TimeoutError as exc:
            error = str(exc)
        res = analyse(system, storm, sent, sink.posts(path), args.strict_names)
        res.error = "; ".join(x for x in (res.error, error) if x)
        res.timed_out = timeout if error else None
        res.cpu_ms = 1000 * (system.cpu() - cpu0) / storm.events
        if ingest0 is not None:
            res.ingest_cpu_ms = 1000 * (system.ingest_cpu() - ingest0) / storm.events
        if helper0 is not None:
            res.helper_cpu_s = system.helper_cpu() - helper0
        if calls0 is not None:
            calls1 = system.redis_calls()
            delta = {k: v - calls0.get(k, 0) for k, v in calls1.items()}
            res.redis_per_event = sum(delta.values()) / storm.events
            (system.dir / "redis-commands.json").write_text(json.dumps(  # every command, for --keep
                dict(sorted(delta.items(), key=lambda kv: -kv[1])), indent=1))
            res.redis_top = sorted(((k, v / storm.events) for k, v in delta.items() if v),
                                   key=lambda kv: -kv[1])[:6]
        res.rss = system.peak_rss()
        return res
    finally:
        system.stop()


def run_rest(kind, sink: StampedSink, workdir: Path, args, tag: str) -> list[float]:
    """Event -> message for single events on an idle system, each after a random pause."""
    path = f"/{kind.__name__.lower()}-{tag}"
    system = _make(kind, workdir / tag / kind.__name__, sink, path, None, args.rest_samples)
    rng = random.Random(11)
    out = []
    try:
        system.start()
        warm_up(system, sink, path)
        for k in range(args.rest_samples):
            time.sleep(0.5 + rng.random())
            host = REST_HOST + k
            t = blast_one(system, Storm(1, 0, first_host=host))
            wait_told(sink, path, system, {host_name(host)}, 30)
            at = min(a for a, p in sink.posts(path) if system.told(a, p.body).host == host_name(host))
            out.append(at - t)
        return out
    finally:
        system.stop()


WARM_HOSTS = (95, 96, 97)  # one event each before a storm (never one of the storm's hosts)
REST_HOST = 80  # at-rest samples use hosts 80, 81, ...


def _make(kind, workdir: Path, sink: StampedSink, path: str, storm: Storm | None, rest: int = 0):
    if kind is Alertmanager:
        return Alertmanager(workdir, f"http://127.0.0.1:{sink.port}{path}")
    hosts = [*(storm.host_indexes() if storm else ()), *WARM_HOSTS,
             *range(REST_HOST, REST_HOST + rest)]
    vms = storm.vms if storm else 0
    cloud = [(host_name(h), [vm_name(h, v) for v in range(vms)] if storm and h in
              storm.host_indexes() else []) for h in hosts]
    return Oneha(workdir, f"json://127.0.0.1:{sink.port}{path}", cloud)


# --- the report -----------------------------------------------------------------------------------

def _s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"


def _mb(values: list[int]) -> str:
    return "/".join(f"{v / 2**20:.0f}" for v in values) if values else "—"


def table(results: list[Result], rest: dict[str, list[float]]) -> list[str]:
    lines = ["| storm | system | accepted/s | all hosts notified after | per-host p99 (last event "
             "→ first message) | messages |", "|---|---|---|---|---|---|"]
    for r in results:
        msgs = f"{r.first}" + (f" (+{r.duplicates} duplicates)" if r.duplicates else "")
        if r.updates:
            msgs += f" (+{r.updates} after group_interval)"
        if r.incomplete:
            msgs += f", {len(r.incomplete)} missing VMs"
        if r.missing:
            msgs += f", {len(r.missing)} hosts never told"
        after = (f"> {r.timed_out:.0f} s ({r.first} of {r.storm.hosts} hosts told)"
                 if r.timed_out else _s(r.all_hosts_s))
        lines.append(f"| {r.storm.label} | {r.system} | {r.accepted_s:,.0f} | {after} "
                     f"| {_s(r.p99_s)} | {msgs} |")
    if rest:
        am, one = rest.get("Alertmanager", []), rest.get("oneha", [])
        lines.append(f"| one event at rest (max of {len(one) or len(am)}) | Alertmanager / oneha | — | "
                     f"{_s(max(am) if am else None)} / {_s(max(one) if one else None)} | — | "
                     f"{len(am)} / {len(one)} |")
    return lines


def verdicts(results: list[Result], rest: dict[str, list[float]]) -> list[tuple[str, bool]]:
    out = []
    by = {}
    for r in results:
        by.setdefault((r.storm.hosts, r.storm.vms), {}).setdefault(r.system, []).append(r)
    for key, systems in by.items():
        ones, ams = systems.get("oneha", []), systems.get("Alertmanager", [])
        label = f"{key[0]}x{key[1]}"
        for r in ones:
            out.append((f"{label}: oneha told every host exactly once, every VM covered "
                        f"({r.first}/{r.storm.hosts} first, {r.duplicates} duplicates, "
                        f"{len(r.incomplete)} incomplete){' — ' + r.error if r.error else ''}",
                        not r.error and r.first == r.storm.hosts and not r.duplicates
                        and not r.incomplete))
        wants = TIMED_STORMS.get(key, ())
        if "ratio" in wants and ones and ams:
            ratios = [o.all_hosts_s / a.all_hosts_s if o.all_hosts_s and a.all_hosts_s else None
                      for o in ones for a in ams if a.rep == o.rep]
            ok = all(x is not None for x in ratios)
            med = statistics.median(ratios) if ok else None
            out.append((f"{label}: all hosts notified, oneha/Alertmanager = "
                        f"{'—' if med is None else f'{med:.2f}'} (target <= {TARGETS['ratio']})",
                        ok and med <= TARGETS["ratio"]))
        if "p99" in wants and ones:
            p99s = [o.p99_s for o in ones]
            ok = all(x is not None for x in p99s)
            med = statistics.median(p99s) if ok else None
            out.append((f"{label}: oneha per-host p99 = {_s(med)} (target <= "
                        f"{TARGETS['p99']:.1f} s)", ok and med <= TARGETS["p99"]))
    if "oneha" in rest:
        worst = max(rest["oneha"])
        out.append((f"at rest: oneha event → message, max of {len(rest['oneha'])} = {worst:.2f} s "
                    f"(target <= {TARGETS['rest']:.1f} s)", worst <= TARGETS["rest"]))
    return out


def costs(results: list[Result]) -> list[str]:
    lines = []
    for r in results:
        label = f"{r.storm.hosts}x{r.storm.vms} {r.system}:"
        if r.error:
            lines.append(f"  {label} FAILED: {r.error}")
        if r.cpu_ms is None:
            continue
        what = "AM process" if r.system == "Alertmanager" else "worker tree"
        line = f"  {label} CPU {r.cpu_ms:.2f} ms/event ({what})"
        if r.ingest_cpu_ms is not None:
            line += f", {r.ingest_cpu_ms:.2f} ms/event (gateway and Redis)"
        if r.redis_per_event is not None:
            line += (f", Redis {r.redis_per_event:.1f} commands/event ("
                     + ", ".join(f"{k} {v:.1f}" for k, v in r.redis_top) + ")")
        if r.helper_cpu_s is not None:
            line += f"; simulated OpenNebula {r.helper_cpu_s:.1f} CPU s"
        line += "; peak RSS MB: " + ", ".join(f"{k} {_mb(v)}" for k, v in r.rss.items())
        if r.load_busy:
            line += "; load processes busy " + "/".join(f"{b:.0%}" for b in r.load_busy)
        if r.reconnects:
            line += f"; {r.reconnects} connections re-opened mid-storm"
        lines.append(line)
    return lines


def parse_storms(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)x(\d+)\s*", part)
        if not m or int(m.group(1)) < 1 or int(m.group(1)) > 80:
            raise argparse.ArgumentTypeError(f"a storm is HOSTSxVMS with 1..80 hosts, got {part!r}")
        out.append((int(m.group(1)), int(m.group(2))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--storms", type=parse_storms, default=list(DEFAULT_STORMS),
                    help="HOSTSxVMS,... (default 10x50,20x100)")
    ap.add_argument("--big", action="store_true", help="add the 50x200 storm (10,050 events)")
    ap.add_argument("--repeat", type=int, default=1, help="run each storm N times")
    ap.add_argument("--rest-samples", type=int, default=3)
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds to wait for duplicates after the last host's first message")
    ap.add_argument("--timeout", type=float, default=0.0,
                    help="seconds a storm may take (default 60 + events/10)")
    ap.add_argument("--strict-names", action="store_true",
                    help="a first message must name every VM (not only count them)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs and logs)")
    ap.add_argument("--only", choices=("Alertmanager", "oneha"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    for name in [k for k in os.environ if k.startswith("ONEHA_") or k == "REDIS_URL"]:
        del os.environ[name]  # oneha's processes inherit our environment: only our config counts
    os.chdir(ROOT)  # `python -m gateway.cli` imports from the current directory first
    storms = [Storm(h, v) for h, v in args.storms + ([BIG_STORM] if args.big else [])]
    kinds = [k for k in (Alertmanager, Oneha) if args.only in (None, k.name)]
    workdir = Path(tempfile.mkdtemp(prefix="oneha-bench-am-"))
    results: list[Result] = []
    rest: dict[str, list[float]] = {}
    print(f"bench/alertmanager.py: {', '.join(s.label for s in storms)}; x{args.repeat}; "
          f"{CONNECTIONS} keep-alive connections from {LOAD_PROCS} processes; group_by host, "
          f"group_wait {GROUP_WAIT:.0f}s; {os.cpu_count()} CPUs shared by everything", flush=True)
    old = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally: blocks stop what we started
    try:
        with StampedSink() as sink:
            for kind in kinds:
                rest[kind.name] = run_rest(kind, sink, workdir, args, "rest")
                print(f"  at rest, {kind.name}: " + ", ".join(f"{x:.2f} s" for x in rest[kind.name]),
                      flush=True)
            for rep in range(args.repeat):
                for storm in storms:
                    # Who goes first alternates, so a slow minute of the machine is shared.
                    for kind in (kinds if rep % 2 == 0 else kinds[::-1]):
                        tag = f"{storm.hosts}x{storm.vms}-{rep}"
                        r = run_storm(kind, storm, sink, workdir, args, tag)
                        r.rep = rep
                        results.append(r)
                        print(f"  {storm.label}, {kind.name}: accepted {r.accepted_s:,.0f}/s, all "
                              f"hosts {_s(r.all_hosts_s)}, p99 {_s(r.p99_s)}, {r.first} first, "
                              f"{r.duplicates} duplicates, {r.updates} later"
                              + (f"; {r.error}" if r.error else ""), flush=True)
    finally:
        signal.signal(signal.SIGTERM, old)
        if args.keep:
            with open(workdir / "sink.jsonl", "w") as f:
                for at, post in sink.arrived:
                    f.write(json.dumps({"at": at, "path": post.path, "body": post.body}) + "\n")
            print(f"configs, logs and what the sink received (sink.jsonl) kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results.sort(key=lambda r: (r.storm.events, r.system != "Alertmanager"))
    print()
    print("\n".join(table(results, rest)))
    print()
    for r in results:
        if r.system == "oneha":
            am = next((a for a in results if a.system == "Alertmanager" and a.storm == r.storm
                       and a.rep == r.rep and a.all_hosts_s), None)
            if am and r.all_hosts_s:
                print(f"ratio oneha/Alertmanager, all hosts notified, {r.storm.label}"
                      f"{f', run {r.rep + 1}' if args.repeat > 1 else ''}: "
                      f"{r.all_hosts_s / am.all_hosts_s:.2f}")
    print("costs per event:")
    print("\n".join(costs(results)))
    ok = True
    for text, passed in verdicts(results, rest):
        print(f"{'ok    ' if passed else 'MISSED'} {text}")
        ok &= passed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
