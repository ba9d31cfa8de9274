"""`oneha demo`: a host of a simulated cloud fails, and you see what the people on call receive.

Everything is real except OpenNebula (the simulator, spoken to over XML-RPC through pyone) and
the people (a local SMTP server and a chat webhook): an embedded Redis, the gateway under
gunicorn, a Celery worker, the beat, and oneha's hooks installed into the simulator, which runs
the real `hook_templates/oneha-hook` sender on each state change.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sys
import time
import urllib.request

from gateway import local

APPROVER = "alice (on call)"
WIDTH = 78


class DemoFailed(RuntimeError):
    pass


class Inbox:
    """What the people received so far; prints each new message once, readably."""

    def __init__(self, smtp, chat, out):
        self.smtp, self.chat, self.out = smtp, chat, out
        self.shown_mail = self.shown_chat = 0

    def wait(self, what: str, predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.show_new()
            if predicate(self):
                return
            time.sleep(0.1)
        self.show_new()
        raise DemoFailed(f"timed out after {timeout:.0f}s waiting for {what}")

    def texts(self) -> list[str]:
        """Every body received so far: mails, then chat messages."""
        return [m.text for m in self.smtp.messages] + [c.message for c in self.chat.messages]

    def mails(self, contains: str) -> list:
        return [m for m in self.smtp.messages if contains.lower() in m.subject.lower()]

    def chats(self, contains: str) -> list:
        return [c for c in self.chat.messages
                if contains.lower() in (c.title + " " + c.message).lower()]

    def show_new(self) -> None:
        for mail in self.smtp.messages[self.shown_mail:]:
            self._box(f"mail to {mail.to}", f"Subject: {mail.subject}\n\n{mail.text.strip()}")
        self.shown_mail = len(self.smtp.messages)
        for post in self.chat.messages[self.shown_chat:]:
            text = "\n".join(x for x in (post.title, post.message) if x)
            self._box("chat message", text.strip())
        self.shown_chat = len(self.chat.messages)

    def _box(self, label: str, text: str) -> None:
        p = self.out
        p(f"┌─ {label} " + "─" * max(0, WIDTH - len(label) - 4))
        # Lines as the person receives them, never re-wrapped here: a wrapped approval link
        # cannot be clicked, and a wrapped impact table cannot be read.
        for line in text.splitlines() or [""]:
            p(f"│ {line}")
        p("└" + "─" * (WIDTH - 1))


def _step(out, text: str) -> None:
    out("")
    out(f"▶ {text}")


def post_json(url: str, body: dict, timeout: float = 10.0,
              token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def wait_ready(url: str, timeout: float, procs: local.Processes) -> None:
    """Until the gateway's /readyz answers 200; DemoFailed when a process exited or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [n for n, p in procs.procs.items() if p.poll() is not None]
        if dead:
            raise DemoFailed(f"{', '.join(dead)} exited early")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.1)
    raise DemoFailed(f"the gateway was not ready after {timeout:.0f}s")


class DemoLogin:
    """The demo's own credentials, made fresh each run: an admin to log in to the console with
    (printed), and an approver's API token the demo approves with."""

    def __init__(self):
        from werkzeug.security import generate_password_hash

        from gateway.domain.auth import new_token, token_digest
        self.user, self.password, self.token = "admin", secrets.token_urlsafe(12), new_token()
        # plain http on 127.0.0.1: a Secure cookie would never come back
        self.section = {"users": [{"name": self.user, "role": "admin",
                                   "password_hash": generate_password_hash(self.password)}],
                        "tokens": [{"name": "demo", "role": "approver",
                                    "sha256": token_digest(self.token)}],
                        "secure_cookies": False}


def demo_config(*, redis_url: str, gateway_url: str, key: str, sim, smtp, chat,
                login: DemoLogin | None = None) -> dict:
    """A complete configuration for the demo: short timings, approval required."""
    login = login or DemoLogin()
    return {
        "auth": login.section,
        "redis_url": redis_url,
        "key_prefix": "oneha:",
        "public_url": gateway_url,
        "secret_key": secrets.token_hex(16),
        "ingest": {"frontends": {"demo-fe": {"keys": [key]}}},
        "opennebula": {"endpoints": sim.endpoints, "session": sim.session, "timeout": "3s"},
        "receivers": [
            {"name": "oncall-mail", "urls": [smtp.url(to="oncall@example.com",
                                                      sender="oneha@example.com")]},
            {"name": "oncall-chat", "urls": [chat.url("hooks/oncall")]},
        ],
        "notify": {"max_attempts": 3, "backoff_base": "1s", "backoff_max": "2s"},
        "route": {"receivers": ["oncall-mail", "oncall-chat"], "group_by": ["host"],
                  "group_wait": "1s", "group_interval": "5s", "repeat_interval": "1h"},
        "remediation": {"mode": "approval", "grace_cycles": 2, "monitoring_interval": "1s",
                        "verify_interval": "0.5s", "verify_timeout": "60s",
                        "retry_backoff": "2s"},
        "raft": {"interval": "2s"},
        "reconciler": {"interval": "5s"},
    }


def demo_cloud():
    """3 hosts, 10 VMs, 3 front-ends. node01 (the one that fails) runs VMs whose disks allow a
    recovery elsewhere: shared system datastore, non-persistent disks or persistent ones on
    shared storage; a VM on local storage runs on node03 and is left alone."""
    from simulator import CloudSpec, DiskSpec, HostSpec, VmSpec

    shared, persistent = DiskSpec(), DiskSpec(persistent=True, image="pgdata")
    hosts = [HostSpec(f"node0{i}", cpu=800, memory_mb=32768) for i in (1, 2, 3)]
    vms = [VmSpec("web-1", "node01"), VmSpec("web-2", "node01"),
           VmSpec("db-1", "node01", memory_mb=4096, disks=[shared, persistent],
                  labels={"ONEHA_PRIORITY": "10"}),
           VmSpec("cache-1", "node01", memory_mb=2048),
           VmSpec("web-3", "node02"), VmSpec("web-4", "node02"), VmSpec("db-2", "node02"),
           VmSpec("ci-1", "node03"), VmSpec("ci-2", "node03"),
           VmSpec("scratch-1", "node03", disks=[DiskSpec(datastore="local")], system_ds="local")]
    return CloudSpec(hosts=hosts, vms=vms, frontends=3, monitoring_interval=1.0, boot_time=1.5,
                     prolog_time=0.5, epilog_time=0.2, sched_interval=0.5)


def run_demo(keep: bool = False, out=print) -> int:
    from simulator import Simulator
    from simulator.sinks import ChatSink, SmtpSink

    base = local.workdir("oneha-demo-")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        out("oneha demo — a host of a simulated OpenNebula cloud fails.")
        out(f"(work directory: {base})")
        redis_url = os.environ.get("REDIS_URL") or os.environ.get("ONEHA_REDIS_URL")
        if not redis_url:
            redis_server = local.EmbeddedRedis(base / "redis").start()
            stack.callback(redis_server.stop)
            redis_url = redis_server.url
        smtp = stack.enter_context(SmtpSink())
        chat = stack.enter_context(ChatSink())
        port = local.free_port()
        gateway_url = f"http://127.0.0.1:{port}"
        key = secrets.token_hex(24)

        # The simulator runs hooks with its own environment, as oned would with the front-end's:
        # this is the sender's configuration.
        os.environ.update({"ONEHA_URLS": gateway_url, "ONEHA_KEY": key,
                           "ONEHA_FRONTEND": "demo-fe", "ONEHA_SPOOL_DIR": str(base / "spool"),
                           "ONEHA_TIMEOUT": "3", "ONEHA_HOOK_CONFIG": str(base / "none.conf")})
        sim = Simulator(demo_cloud()).start()
        stack.callback(sim.stop)

        login = DemoLogin()
        config = local.write_config(demo_config(redis_url=redis_url, gateway_url=gateway_url,
                                                key=key, sim=sim, smtp=smtp, chat=chat,
                                                login=login),
                                    base / "oneha.yaml")
        procs = stack.enter_context(local.Processes(config, base / "logs"))
        procs.oneha("gateway", "serve", "--port", str(port), "--workers", "1")
        procs.oneha("worker", "worker", "--concurrency", "2")
        procs.oneha("beat", "beat")
        inbox = Inbox(smtp, chat, out)
        try:
            wait_ready(gateway_url, 30, procs)
            out(f"  console: {gateway_url}/  (log in as {login.user} / {login.password}; "
                "this run only)")
            summary = _scenario(sim, inbox, gateway_url, out, login.token)
        except DemoFailed as exc:
            out("")
            out(f"✗ demo failed: {exc}")
            out(f"  logs: {base / 'logs'}")
            keep = True
            return 1
        finally:
            if not keep:
                stack.callback(shutil.rmtree, base, True)
        out("")
        out("Summary")
        for line in summary:
            out(f"  {line}")
        out(f"  whole demo: {time.monotonic() - started:.1f} s; every process stopped.")
    return 0


def _scenario(sim, inbox: Inbox, gateway_url: str, out, token: str) -> list[str]:
    """The story: hooks in, node01 crashes, people are told, approve, the VMs run elsewhere."""
    _install_hooks(sim, out)
    hosts = sim.hosts()
    victim = next(h for h in hosts if h["name"] == "node01")
    vms = [sim.vm(i) for i in victim["vm_ids"]]
    out(f"  cloud: {len(hosts)} hosts, {len(sim.vms())} VMs, {len(sim.endpoints)} front-ends (Raft)")
    out(f"  {victim['name']} runs {len(vms)} VMs: {', '.join(v['name'] for v in vms)}")

    _step(out, f"{victim['name']} loses power (it stops answering the monitor)")
    crashed_at = time.time()
    sim.crash_host(victim["id"])
    inbox.wait("the grouped alert (mail + chat)",
               lambda ib: ib.mails("[FIRING]") and ib.chats("[FIRING]"), 45)

    _step(out, "oneha plans the recovery and asks for approval")
    inbox.wait("the approval request", lambda ib: approval_token(ib.texts()) is not None, 60)
    _approve(approval_token(inbox.texts()), gateway_url, out, token)

    _step(out, "The VMs are recovered on the other hosts; oneha verifies each one")
    ids = [v["id"] for v in vms]
    _wait_running_elsewhere(sim, ids, victim["id"])
    inbox.wait("the resolve message with the impact report",
               lambda ib: ib.mails("[RESOLVED]") and ib.chats("[RESOLVED]"), 60)
    names = {h["id"]: h["name"] for h in hosts}
    return _report(sim, inbox, victim["name"], ids, names, crashed_at)


def _install_hooks(sim, out) -> None:
    from gateway.adapters import hooks
    from gateway.adapters.opennebula import OpenNebula

    one = OpenNebula(sim.endpoints, sim.session, timeout=3.0)
    _step(out, "Installing oneha's hooks into OpenNebula (one.hook.allocate through pyone, "
               "on the Raft leader)")
    changes = hooks.install(one, hooks.load_templates(command=str(hooks.sender_path())))
    out(f"  {sum(1 for c in changes if c.action != 'unchanged')} hooks installed "
        f"(host ERROR/MONITORED, VM UNKNOWN, VM *_FAILURE states)")


def _approve(token: str | None, gateway_url: str, out, api_token: str) -> None:
    _step(out, f"{APPROVER} approves (the same as clicking the link and Approve)")
    status, body = post_json(f"{gateway_url}/v1/approvals/{token}",
                              {"decision": "approve", "approver": APPROVER}, token=api_token)
    if status != 200:
        raise DemoFailed(f"approval answered {status}: {body}")
    out(f"  gateway: {status} {body.get('status', '')} {body.get('detail', '')}".rstrip())


def running_elsewhere(sim, ids: list[int], crashed_host_id: int) -> bool:
    """Every VM of `ids` is ACTIVE/RUNNING on a host other than the crashed one."""
    return all(v["state_name"] == "ACTIVE" and v["lcm_state_name"] == "RUNNING"
               and v["host_id"] != crashed_host_id for v in (sim.vm(i) for i in ids))


def _wait_running_elsewhere(sim, ids: list[int], crashed_host_id: int) -> None:
    try:
        sim.wait_for(lambda: running_elsewhere(sim, ids, crashed_host_id), timeout=90,
                     message="VMs running elsewhere")
    except TimeoutError as exc:
        raise DemoFailed(str(exc)) from None


def _report(sim, inbox: Inbox, crashed: str, ids: list[int], names: dict[int, str],
            crashed_at: float) -> list[str]:
    """Where each VM went, and what it took: the demo's closing lines."""
    after = [sim.vm(i) for i in ids]
    lines = [f"{crashed} crashed; {len(ids)} VMs moved:"]
    for v in after:
        lines.append(f"  {v['name']:<10} {crashed} → {names.get(v['host_id'], v['host_id'])}"
                     f"  ({v['state_name']}/{v['lcm_state_name']})")
    lines.append(f"messages received: {len(inbox.smtp.messages)} mails, "
                 f"{len(inbox.chat.messages)} chat messages")
    actions = [a for a in sim.action_log if a["method"] in ("one.vm.action", "one.vm.recover")]
    lines.append(f"recovery calls made to OpenNebula: {len(actions)} for {len(ids)} VMs")
    lines.append(f"from crash to resolve message: {time.time() - crashed_at:.1f} s")
    return lines


def approval_token(texts) -> str | None:
    """The approval link's token in the first of `texts` (message bodies) that has one."""
    for text in texts:
        m = re.search(r"/approvals/([A-Za-z0-9._~=-]+)", text)
        if m:
            return m.group(1)
    return None


if __name__ == "__main__":
    sys.exit(run_demo())
