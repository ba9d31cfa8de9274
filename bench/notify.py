"""End-to-end notification throughput and latency: incident logic vs the same pipeline without it.

1000 signed VM UNKNOWN events (realistic ~8 KB XML) for 1000 VMs on 10 hosts are POSTed to the
real gateway (`oneha serve`: gunicorn, 2 workers), recorded by ingest, processed by a real
`oneha worker` (2 processes) and delivered by `oneha.deliver` through apprise to a real SMTP
server (aiosmtpd, in this process). Redis is a redis-server of our own (AOF everysec).

Two pipelines, measured in the same run, same gateway, same worker settings, same delivery task:
  incident — `oneha.process_event` as shipped (worker without the remediation tasks, see
             INCIDENT_TASKS): incidents, routing, grouping by host
             (group_wait G, group_interval G), flushes by `oneha beat` + the delayed fast path;
             10 hosts -> ~10 mails.
  bypass   — `oneha.process_event` replaced by a task that turns each event straight into a
             Notification for `oneha.deliver` (no incident, no grouping): 1000 mails.
Reported per pipeline:
  events/s      1000 / (last mail - first POST), minus G for the incident pipeline (the group
                wait is a chosen delay, not work);
  p99 latency   per event, excluding group waits: incident = (POST -> event recorded in its
                incident, from the timeline) + (group flush -> its mail at the SMTP server);
                bypass = POST -> its mail;
  processing    1000 / (last event recorded - first POST): the event path alone, no delivery.
Ratios: incident / bypass for events/s (target >= 0.7) and bypass p99 / incident p99.
Note the asymmetry the issue asks for: bypass pays 1000 SMTP deliveries where the incident
pipeline pays ~10 — that is the point of grouping; `processing` compares the event path alone.

    .venv/bin/python bench/notify.py [--events 1000] [--hosts 10] [--group-wait 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import yaml  # noqa: E402

from gateway.domain import signing  # noqa: E402
from tests.support.procs import RedisServer, free_port, wait_for_port  # noqa: E402
from tests.support.sinks import SmtpSink  # noqa: E402
from tests.support.samples import b64, vm_xml  # noqa: E402

KEY = "bench-notify-key"

# The incident worker runs the shipped tasks minus remediation: with `mode: off` its planning
# task still asks OpenNebula (absent here) and retries, which would measure remediation's cost.
INCIDENT_TASKS = textwrap.dedent("""
    from gateway.config import load_settings
    from tasks.app import create_celery

    app = create_celery(load_settings())
    app.conf.include = ["tasks.process", "tasks.housekeeping", "tasks.notify"]
    app.set_default()
""")

BYPASS_TASKS = textwrap.dedent("""
    # The same worker as `oneha worker`, with `oneha.process_event` replaced: no incident logic.
    from celery import current_app
    from gateway.config import load_settings
    from gateway.domain.events import Event
    from gateway.domain.notifications import Notification, notification_id_for
    from tasks.app import create_celery

    app = create_celery(load_settings())
    app.conf.include = ["tasks.notify"]
    app.set_default()

    @app.task(name="oneha.process_event", acks_late=True)
    def process_event(event_json):
        e = Event.from_json(event_json)
        n = Notification(notification_id_for(e.event_id, "firing", 0, "ops-mail"), "ops-mail",
                         "firing", {"id": e.object_key,
                                    "title": f"VM {e.name} ({e.object_id}) is ACTIVE/UNKNOWN"},
                         app.oneha_runtime.clock())
        app.send_task("oneha.deliver", args=[n.to_json()])
""")


class StampedSmtp(SmtpSink):
    """The test SMTP sink, noting when each mail arrived."""

    def __init__(self):
        super().__init__()
        self.arrived: list[tuple[float, str]] = []

    def _add(self, mail) -> None:
        self.arrived.append((time.time(), mail.subject))
        super()._add(mail)


def event_bodies(n: int, hosts: int) -> list[tuple[int, bytes]]:
    out = []
    for vm in range(n):
        h = vm % hosts
        body = {"resource": "VM", "id": vm, "name": f"web-{vm}", "state": 3, "lcm_state": 16,
                "state_name": "ACTIVE", "lcm_state_name": "UNKNOWN",
                "xml": b64(vm_xml(vm, state=3, lcm_state=16, host=f"node{h}", host_id=h)),
                "hook": "oneha-vm-unknown", "frontend": "fe1", "sent_at": time.time(),
                "event_id": uuid.uuid4().hex}
        out.append((vm, json.dumps(body).encode()))
    return out


def post_all(port: int, bodies: list[tuple[int, bytes]], threads: int = 4) -> dict[int, float]:
    posted: dict[int, float] = {}
    chunks = [bodies[i::threads] for i in range(threads)]

    def run(chunk):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for vm, body in chunk:
            ts = int(time.time())
            headers = {"Content-Type": "application/json", "X-OneHA-Frontend": "fe1",
                       "X-OneHA-Timestamp": str(ts),
                       "X-OneHA-Signature": signing.signature(KEY.encode(), ts, body)}
            t = time.time()
            conn.request("POST", "/v1/events", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 202:
                raise RuntimeError(f"POST answered {resp.status}")
            posted[vm] = t
        conn.close()
    ts = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return posted


class Run:
    def __init__(self, mode: str, workdir: Path, redis_url: str, smtp: StampedSmtp, args):
        self.mode, self.args, self.smtp = mode, args, smtp
        self.workdir = workdir / mode
        self.workdir.mkdir(parents=True)
        self.prefix = f"bench-{mode}-{uuid.uuid4().hex[:6]}:"
        self.config = {
            "redis_url": redis_url, "key_prefix": self.prefix,
            "ingest": {"frontends": {"fe1": {"keys": [KEY]}}},
            "receivers": [{"name": "ops-mail", "urls": [smtp.url(to="oncall@example.com")]}],
            "route": {"group_by": ["host"], "group_wait": f"{args.group_wait}s",
                      "group_interval": f"{args.group_wait}s", "repeat_interval": "1h"},
            "remediation": {"mode": "off"},
            "raft": {"enabled": False}, "reconciler": {"enabled": False}}
        self.config_path = self.workdir / "oneha.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))
        self.env = {**os.environ, "ONEHA_CONFIG": str(self.config_path), "PYTHONUNBUFFERED": "1",
                    "PYTHONPATH": os.pathsep.join([str(self.workdir), str(ROOT)])}
        self.env.pop("REDIS_URL", None)
        self.procs: list[subprocess.Popen] = []
        self.r = redis.Redis.from_url(redis_url)

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        p = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)
        return p

    def start(self) -> int:
        port = free_port()
        self.spawn("serve", [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
                             "--workers", "2", "--threads", "4"])
        module = f"bench_{self.mode}"
        (self.workdir / f"{module}.py").write_text(
            INCIDENT_TASKS if self.mode == "incident" else BYPASS_TASKS)
        base = self.prefix.rstrip(":")
        queues = f"{base}.tasks,{base}.notify"  # as `oneha worker`: events, and deliveries
        self.spawn("worker", [sys.executable, "-m", "celery", "-A", module, "worker", "-c", "2",
                              "--without-mingle", "--without-gossip", "--loglevel", "warning",
                              "-Q", queues, "-n", f"bench-{self.prefix}@h"])
        if self.mode == "incident":
            self.spawn("beat", [sys.executable, "-m", "gateway.cli", "beat", "--loglevel",
                                "warning"])
        wait_for_port(port, timeout=30)
        time.sleep(3.0)  # let the worker finish booting (its log level hides "ready")
        return port

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def measure(self) -> dict:
        args = self.args
        port = self.start()
        try:
            bodies = event_bodies(args.events, args.hosts)
            self.smtp.clear()
            self.smtp.arrived.clear()
            t0 = time.time()
            posted = post_all(port, bodies)
            result = (self._incident(posted, t0) if self.mode == "incident"
                      else self._bypass(posted, t0))
            return result
        finally:
            self.stop()
            keys = list(self.r.scan_iter(match=self.prefix + "*", count=1000))
            if keys:
                self.r.delete(*keys)

    def _bypass(self, posted: dict[int, float], t0: float) -> dict:
        self.smtp.wait_for(self.args.events, timeout=600)
        arrival: dict[int, float] = {}
        for t, subject in self.smtp.arrived:
            m = re.search(r"VM web-(\d+) ", subject)
            if m:
                arrival.setdefault(int(m.group(1)), t)
        lat = [arrival[vm] - posted[vm] for vm in posted]
        last = max(t for t, _ in self.smtp.arrived)
        return {"events_s": len(posted) / (last - t0), "lat": lat, "mails": len(self.smtp.arrived),
                "processing_s": None}

    def _incident(self, posted: dict[int, float], t0: float) -> dict:
        from gateway.adapters.store.incidents import IncidentStore
        from gateway.config import settings_from_dict
        from gateway.runtime import Runtime
        store = IncidentStore(Runtime.from_settings(settings_from_dict(self.config, env={})))
        deadline = time.time() + 600
        # Done when every VM has been in a sent message: each incident's timeline says so.
        while time.time() < deadline:
            incs = store.list(open_only=True, limit=10_000)
            if len(incs) == len(posted) and all(
                    any(e.kind == "notification" for e in store.timeline(i.id)) for i in incs):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError("not every incident was notified within 600 s")
        time.sleep(1.0)  # the last mails leave the worker
        by_host_mails: dict[str, list[float]] = {}
        for t, subject in self.smtp.arrived:
            m = re.search(r"host=(node\d+)", subject) or re.search(r"on host (node\d+)", subject)
            if m:
                by_host_mails.setdefault(m.group(1), []).append(t)
        lat, recorded = [], []
        for inc in incs:
            vm = int(inc.primary.id)
            tl = store.timeline(inc.id)
            rec = next(e.t for e in tl if e.kind == "event")
            note = next(e for e in tl if e.kind == "notification")
            mails = by_host_mails.get(inc.primary.host, [])
            seq = note.data.get("seq", 1)
            if len(mails) < seq:
                raise RuntimeError(f"no mail #{seq} for {inc.primary.host} at the SMTP server")
            lat.append((rec - posted[vm]) + (mails[seq - 1] - note.t))
            recorded.append(rec)
        last = max(t for t, _ in self.smtp.arrived)
        return {"events_s": len(posted) / (last - t0 - self.args.group_wait), "lat": lat,
                "mails": len(self.smtp.arrived),
                "processing_s": len(posted) / (max(recorded) - t0)}


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--group-wait", type=float, default=3.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oneha-bench-notify-"))
    server = RedisServer(work / "redis", appendonly=True).start()
    results = {}
    try:
        with StampedSmtp() as smtp:
            for mode in ("bypass", "incident"):
                results[mode] = Run(mode, work, server.url, smtp, args).measure()
                r = results[mode]
                print(f"{mode:<9} {r['events_s']:8.1f} events/s   p50 {p(r['lat'], .5) * 1000:7.1f} ms"
                      f"   p99 {p(r['lat'], .99) * 1000:7.1f} ms   mails {r['mails']}"
                      + (f"   processing {r['processing_s']:.1f} events/s" if r["processing_s"] else ""),
                      flush=True)
    finally:
        server.stop(kill=True)
    inc, byp = results["incident"], results["bypass"]
    print(f"ratio events/s incident/bypass: {inc['events_s'] / byp['events_s']:.2f} (target >= 0.7)")
    print(f"ratio p99 bypass/incident:      {p(byp['lat'], .99) / p(inc['lat'], .99):.2f}")


if __name__ == "__main__":
    main()
