"""Accepted events per second of `POST /v1/events`, against two baselines measured in the same run.

Setup (issue 2): gunicorn with 2 gthread workers (4 threads each, keep-alive), a redis-server of
our own with AOF `appendfsync everysec` on a free port, signed events carrying a realistic ~8 KB
VM XML (each with its own event_id), sent from a separate load process over keep-alive
connections spread evenly over each server's two workers (see `balanced_connections`). Three
servers, same gunicorn settings:
  trivial   — a Flask endpoint that only answers 202 (the ceiling);
  reference — a minimal ingest written here: verify the HMAC, parse JSON, base64 and the XML
              (no DTD, C parser), one pipelined Redis write (SET NX dedup + XADD);
  oneha     — `gateway.app.create_app` (what `oneha serve` runs).
Each round sends one short slice to each server, back to back (ABC, then CBA), so a slow second
of the machine (its CPUs are shared with other tenants: single rates swing 2x) lands on all
three alike; ratios are taken per round and their median is reported.
Targets: oneha >= 0.40 of trivial, >= 0.9 of reference, p99 <= 15 ms. The load generator runs on
the same 2 CPUs: read the ratios, not the absolutes.

    .venv/bin/python bench/ingest.py [--slice 300] [--rounds 30] [--connections 8]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import os
import queue
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KEY = "bench-key-0123456789abcdef"
FRONTEND = "fe1"
KINDS = ("trivial", "reference", "oneha")
TARGETS = {"trivial": 0.40, "reference": 0.90, "p99_ms": 15.0}


# --- the three apps (gunicorn imports this module and calls make_app(kind) in each worker) ------

def make_app(kind: str):
    from flask import Flask, jsonify, request

    redis_url = os.environ["BENCH_REDIS_URL"]
    if kind == "oneha":
        from gateway.app import create_app
        from gateway.config import settings_from_dict
        return create_app(settings_from_dict(
            {"redis_url": redis_url, "key_prefix": "bench:",
             "ingest": {"frontends": {FRONTEND: {"keys": [KEY]}}}}, env={}))

    app = Flask("bench")
    if kind == "trivial":
        @app.post("/v1/events")
        def trivial():
            return jsonify(ok=True), 202
        return app

    import xml.etree.ElementTree as ET

    import redis

    client = redis.Redis.from_url(redis_url)
    key = KEY.encode()

    @app.post("/v1/events")
    def reference():
        body = request.get_data(cache=False)
        ts = request.headers["X-OneHA-Timestamp"]
        mac = "sha256=" + hmac.new(key, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, request.headers["X-OneHA-Signature"]) \
                or abs(int(ts) - time.time()) > 300:
            return jsonify(error="bad_signature"), 401
        payload = json.loads(body)
        xml = base64.b64decode(payload["xml"], validate=True).decode()
        if "<!DOCTYPE" in xml:  # what a DTD-free parse needs; the C parser does the rest
            return jsonify(error="forbidden_xml"), 400
        root = ET.fromstring(xml)
        if root.tag != payload["resource"]:
            return jsonify(error="resource_mismatch"), 400
        pipe = client.pipeline(transaction=False)
        pipe.set("ref:dedup:" + payload["event_id"], "1", nx=True, ex=86400)
        pipe.xadd("ref:log", {"event": body}, maxlen=100_000, approximate=True)
        fresh, _ = pipe.execute()
        return jsonify(event_id=payload["event_id"], duplicate=not fresh), 202
    return app


# --- load generator (a separate process) -----------------------------------------------------------

def build_requests(port: int, count: int, start: int) -> list[bytes]:
    from gateway.domain.signing import signature
    from tests.support.samples import b64, vm_xml

    xmls = {i: b64(vm_xml(i, state=3, lcm_state=16)) for i in range(1000, 1200)}
    requests = []
    ts = int(time.time())
    for n in range(start, start + count):
        vm_id = 1000 + n % 200
        body = json.dumps({
            "resource": "VM", "id": vm_id, "name": f"web-{vm_id}", "state": 3, "lcm_state": 16,
            "state_name": "ACTIVE", "lcm_state_name": "UNKNOWN", "xml": xmls[vm_id],
            "hook": "oneha-vm-unknown", "frontend": FRONTEND, "sent_at": ts,
            "event_id": hashlib.sha256(f"bench:{n}".encode()).hexdigest()[:32]}).encode()
        head = (f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-OneHA-Frontend: {FRONTEND}\r\nX-OneHA-Timestamp: {ts}\r\n"
                f"X-OneHA-Signature: {signature(KEY.encode(), ts, body)}\r\n\r\n")
        requests.append(head.encode() + body)
    return requests


_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


class Connection:
    """A keep-alive HTTP/1.1 client that does nothing but send prepared bytes and read answers."""

    reconnects = 0  # after the first connect, across all connections (see balanced_connections)

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None

    def roundtrip(self, request: bytes) -> int:
        for attempt in (1, 2):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(("127.0.0.1", self.port))
                    self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.sock.sendall(request)
                return self._answer()
            except (ConnectionError, OSError):
                self.close()
                Connection.reconnects += 1
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def _answer(self) -> int:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(_LENGTH.search(head).group(1))
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection mid-answer")
            rest += chunk
        return int(head[9:12])

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


_PROBE = b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"  # 405 from every server


def balanced_connections(port: int, workers: list[int], n: int) -> list[Connection]:
    """`n` keep-alive connections spread evenly over the server's worker processes.

    A gunicorn worker keeps the connections it accepted, and which worker accepts is luck: with 8
    connections kept for a whole run, all 8 on one worker (one CPU, one GIL) happened often
    enough to halve a run's rate — the 2x swings seen between runs. A sender that connects per
    event spreads evenly; so does this: connect, ask which worker holds the socket, keep it if
    that worker needs one more."""
    import psutil

    want = {pid: n // len(workers) + (i < n % len(workers)) for i, pid in enumerate(workers)}
    held: dict[int, list[Connection]] = {pid: [] for pid in workers}
    spare: list[Connection] = []
    for _ in range(100 * n):
        if all(len(held[pid]) == want[pid] for pid in workers):
            break
        conn = Connection(port)
        conn.roundtrip(_PROBE)  # answered, so a worker has accepted it
        owner = next((pid for pid in workers for c in psutil.Process(pid).net_connections("tcp")
                      if c.raddr and c.raddr.port == conn.local_port), None)
        (held[owner] if owner in held and len(held[owner]) < want[owner] else spare).append(conn)
    else:
        raise RuntimeError(f"could not spread {n} connections over workers {workers} of :{port}")
    for conn in spare:
        conn.close()
    return [conn for pid in workers for conn in held[pid]]


class Loader:
    """`connections` keep-alive connections per server (spread evenly over its workers), each
    driven by its own thread, kept for the whole run: a slice costs no thread start or
    handshake, and every server gets the same spread."""

    def __init__(self, servers: dict[str, dict], connections: int):
        self.ports = {kind: server["port"] for kind, server in servers.items()}
        self.conns = {kind: balanced_connections(server["port"], server["workers"], connections)
                      for kind, server in servers.items()}
        Connection.reconnects = 0
        self.connections = connections
        self.jobs = [queue.Queue() for _ in range(connections)]
        self.done: queue.Queue = queue.Queue()
        self.threads = [threading.Thread(target=self._work, args=(i,), daemon=True)
                        for i in range(connections)]
        for t in self.threads:
            t.start()

    def _work(self, i: int) -> None:
        conns = {kind: conns[i] for kind, conns in self.conns.items()}
        while (job := self.jobs[i].get()) is not None:
            kind, items, take = job
            conn, lat, codes = conns[kind], [], {}
            try:
                # Requests come from one shared counter (next() on it is atomic), so a connection
                # whose worker is less busy takes more: the slice ends with all of them busy.
                for n in take:
                    if n >= len(items):
                        break
                    t = time.perf_counter()
                    code = conn.roundtrip(items[n])
                    lat.append(time.perf_counter() - t)
                    codes[code] = codes.get(code, 0) + 1
            except Exception as exc:  # the run must fail, not wait for this thread forever
                self.done.put(exc)
                continue
            self.done.put((lat, codes))
        for conn in conns.values():
            conn.close()

    def run(self, kind: str, requests: list[bytes]) -> dict:
        """Send `requests` to `kind` over all connections at once; wall time, latencies, codes."""
        take = itertools.count()
        t0 = time.perf_counter()
        for jobs in self.jobs:
            jobs.put((kind, requests, take))
        latencies, statuses, failed = [], {}, None
        for _ in self.jobs:
            got = self.done.get(timeout=300)
            if isinstance(got, Exception):
                failed = got
                continue
            lat, codes = got
            latencies += lat
            for c, k in codes.items():
                statuses[c] = statuses.get(c, 0) + k
        if failed is not None:
            raise RuntimeError(f"{kind}: a connection failed mid-slice: {failed}") from failed
        return {"seconds": time.perf_counter() - t0, "latencies": latencies, "statuses": statuses}

    def close(self) -> None:
        for jobs in self.jobs:
            jobs.put(None)
        for t in self.threads:
            t.join()


def run_load(servers: dict[str, dict], slice_size: int, rounds: int, warmup: int,
             connections: int, redis_url: str) -> dict:
    """Interleaved slices: every round sends one slice to each server, in an order that turns
    around each round (ABC, CBA, ...), so a slow second of the machine lands on all three alike.
    Redis is emptied before each slice (nothing piles up in it or in its AOF between slices)."""
    import redis

    r = redis.Redis.from_url(redis_url)
    loader = Loader(servers, connections)
    ports = loader.ports
    counter = iter(range(10**9))

    def requests(kind: str, n: int) -> list[bytes]:
        return build_requests(ports[kind], n, next(counter) * 100_000)

    def one_slice(kind: str, n: int) -> dict:
        batch = requests(kind, n)
        r.flushall()
        res = loader.run(kind, batch)
        bad = {c: k for c, k in res["statuses"].items() if c != 202}
        if bad:
            raise RuntimeError(f"{kind}: answers other than 202: {bad}")
        if kind == "oneha":  # everything answered 202 was really recorded and queued
            logged, queued = r.xlen("bench:events:log"), r.xlen("bench:events:pending")
            if logged != queued or logged != n:
                raise RuntimeError(f"oneha recorded {logged} and queued {queued} of {n} events")
        return res

    try:
        for kind in ports:
            one_slice(kind, warmup)
        slices: list[dict[str, dict]] = []
        kinds = list(ports)
        for rnd in range(rounds):
            order = kinds if rnd % 2 == 0 else kinds[::-1]
            slices.append({kind: one_slice(kind, slice_size) for kind in order})
    finally:
        loader.close()
        r.flushall()
    out = {"reconnects": Connection.reconnects,
           "rounds": [{k: {"rate": slice_size / v["seconds"]} for k, v in rnd.items()}
                      for rnd in slices]}
    for kind in ports:
        lat = sorted(x for rnd in slices for x in rnd[kind]["latencies"])
        seconds = sum(rnd[kind]["seconds"] for rnd in slices)
        out[kind] = {"rate": slice_size * rounds / seconds, "p50_ms": 1000 * lat[len(lat) // 2],
                     "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]}
    return out


# --- orchestration ---------------------------------------------------------------------------------

def start_gunicorn(kind: str, port: int, redis_url: str, threads: int = 4) -> subprocess.Popen:
    """gunicorn serving `make_app(kind)`; keep-alive outlasts a round, so no connection is
    dropped (and re-spread by luck) between one server's slices."""
    from tests.support.procs import wait_for_port
    env = {**os.environ, "BENCH_REDIS_URL": redis_url,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)])}
    env.pop("ONEHA_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "gthread",
         "--threads", str(threads), "--keep-alive", "60", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", f"ingest:make_app({kind!r})"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, timeout=30)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"gunicorn ({kind}) did not start: {proc.stderr.read().decode()[-2000:]}")
    return proc


def worker_pids(proc: subprocess.Popen, count: int = 2, timeout: float = 30) -> list[int]:
    import psutil
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = psutil.Process(proc.pid).children()
        if len(children) == count:
            return sorted(c.pid for c in children)
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn {proc.pid} did not start {count} workers")


def load_in_subprocess(servers: dict[str, dict], args: argparse.Namespace, redis_url: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--load", json.dumps(servers), "--redis", redis_url,
         "--slice", str(args.slice), "--rounds", str(args.rounds), "--warmup", str(args.warmup),
         "--connections", str(args.connections)],
        cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slice", type=int, default=300, help="requests per server per round")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: be the load generator
    parser.add_argument("--redis", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(run_load(json.loads(args.load), args.slice, args.rounds, args.warmup,
                                  args.connections, args.redis)))
        return 0

    import redis

    from tests.support.procs import RedisServer, free_port
    from tests.support.samples import vm_xml

    workdir = Path(tempfile.mkdtemp(prefix="oneha-bench-ingest-"))
    server = RedisServer(workdir, appendonly=True).start()
    r = redis.Redis.from_url(server.url)
    assert r.config_get("appendfsync")["appendfsync"] == "everysec"
    # An AOF rewrite forks Redis in the middle of whichever slice crosses the size threshold:
    # noise for one server, not a cost of any. Every slice starts from an empty Redis anyway.
    r.config_set("auto-aof-rewrite-percentage", 0)
    procs: dict[str, subprocess.Popen] = {}
    ports = {kind: free_port() for kind in KINDS}
    print(f"bench/ingest.py: POST /v1/events with a {len(vm_xml().encode()) / 1024:.1f} KB VM XML; "
          f"gunicorn 2 gthread workers x {args.threads} threads, keep-alive; {args.connections} "
          f"connections from a separate process; redis-server AOF everysec; {os.cpu_count()} CPUs "
          f"shared; {args.rounds} rounds of {args.slice} requests per server, interleaved")
    try:
        for kind in KINDS:
            procs[kind] = start_gunicorn(kind, ports[kind], server.url, args.threads)
        servers = {kind: {"port": ports[kind], "workers": worker_pids(procs[kind])}
                   for kind in KINDS}
        res = load_in_subprocess(servers, args, server.url)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    # A round's three slices ran within a second of each other: their ratios are compared, and
    # the median round reported (rates alone swing 2x with the machine's other tenants).
    rounds = res["rounds"]
    vs_trivial = statistics.median(x["oneha"]["rate"] / x["trivial"]["rate"] for x in rounds)
    vs_reference = statistics.median(x["oneha"]["rate"] / x["reference"]["rate"] for x in rounds)
    spread = sorted(x["oneha"]["rate"] / x["reference"]["rate"] for x in rounds)
    q1, q3 = spread[len(spread) // 4], spread[(3 * len(spread)) // 4]

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print("events/s (all rounds): " + ", ".join(
        f"{kind} {res[kind]['rate']:.0f} (p50 {res[kind]['p50_ms']:.1f} ms, p99 "
        f"{res[kind]['p99_ms']:.1f} ms)" for kind in KINDS))
    print(f"oneha / trivial   = {vs_trivial:.2f}  (median of {len(rounds)} rounds; target >= "
          f"{TARGETS['trivial']:.2f}) {verdict(vs_trivial >= TARGETS['trivial'])}")
    print(f"oneha / reference = {vs_reference:.2f}  (median of {len(rounds)} rounds, quartiles "
          f"{q1:.2f}-{q3:.2f}; target >= {TARGETS['reference']:.2f}) "
          f"{verdict(vs_reference >= TARGETS['reference'])}")
    if res["reconnects"]:
        print(f"warning: {res['reconnects']} connections were re-opened mid-run (their spread "
              "over the workers is luck again)")
    p99 = res["oneha"]["p99_ms"]
    print(f"oneha latency p50 = {res['oneha']['p50_ms']:.1f} ms, p99 = {p99:.1f} ms  (all rounds; "
          f"target p99 <= {TARGETS['p99_ms']:.0f} ms) {verdict(p99 <= TARGETS['p99_ms'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
