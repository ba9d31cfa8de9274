"""The whole of oneha as a person meets it, for end-to-end tests: the simulator running oneha's
hooks (the real `oneha-hook` sender) → `oneha serve` under gunicorn → `oneha worker` and
`oneha beat` on the machine's Redis (a key prefix of the test's own, which names the queues too)
→ a real SMTP server and a real chat webhook receiver. `Stack.told(receiver)` is what one
receiver was told, in the order it arrived.

    with Stack(spec, key_prefix, tmp_path, monkeypatch, mode="auto") as stack:
        stack.sim.crash_host(0)
        stack.wait("the alert", lambda: stack.told("mail"))
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from gateway import local
from gateway.demo import (DemoLogin, approval_token, demo_config, post_json, running_elsewhere,
                          wait_ready)
from tests.support.auth import TOKENS
from tests.support.procs import StartStop
from simulator import CloudSpec, Simulator
from tests.support.sinks import ChatSink, SmtpSink



@dataclass(frozen=True)
class Told:
    """One message as its receiver got it."""

    receiver: str  # mail | chat
    title: str
    body: str
    at: float  # when the receiver had it (time.time())

    @property
    def kind(self) -> str:
        """The headline's tag: FIRING, APPROVAL NEEDED, NEEDS A HUMAN, RESOLVED ..."""
        m = re.match(r"\[([A-Z ]+)\]", self.title)
        return m.group(1) if m else ""

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.body}"


class Stack(StartStop):
    def __init__(self, spec: CloudSpec, key_prefix: str, tmp_path: Path, monkeypatch,
                 redis_url: str = "redis://127.0.0.1:6379/0", route: dict | None = None,
                 receivers: dict | None = None, auth: dict | None = None, **remediation):
        """`receivers`: per receiver name (mail, chat), fields to add (e.g. a language);
        `auth`: the config's auth section (users and tokens)."""
        self.receivers, self.auth = receivers or {}, auth
        self.spec, self.key_prefix, self.base = spec, key_prefix, Path(tmp_path)
        self.monkeypatch, self.redis_url = monkeypatch, redis_url
        self.route, self.remediation = route or {}, remediation
        self.smtp = self.chat = self.sim = self.procs = None
        self._seen: dict[int, float] = {}  # id(message) -> first time a poll saw it

    def start(self) -> "Stack":
        self.smtp, self.chat = SmtpSink().__enter__(), ChatSink().__enter__()
        port = local.free_port()
        self.url = f"http://127.0.0.1:{port}"
        key = secrets.token_hex(24)
        # The sender's configuration, in the environment oned gives its hooks.
        for name, value in {"ONEHA_URLS": self.url, "ONEHA_KEY": key,
                            "ONEHA_FRONTEND": "demo-fe", "ONEHA_SPOOL_DIR": str(self.base / "spool"),
                            "ONEHA_TIMEOUT": "3",
                            "ONEHA_HOOK_CONFIG": str(self.base / "none.conf")}.items():
            self.monkeypatch.setenv(name, value)
        self.sim = Simulator(self.spec).start()
        self.login = DemoLogin()
        config = demo_config(redis_url=self.redis_url, gateway_url=self.url, key=key,
                             sim=self.sim, smtp=self.smtp, chat=self.chat, login=self.login)
        config["key_prefix"] = self.key_prefix
        config["route"].update(self.route)
        config["remediation"].update(self.remediation)
        for receiver in config["receivers"]:
            receiver.update(self.receivers.get(receiver["name"], {}))
        self.api_token = self.login.token  # the demo's approver token
        if self.auth is not None:
            config["auth"] = self.auth  # tests/support/auth.py's auth_section(), say
            self.api_token = TOKENS["approver"]
        self.config = config
        path = local.write_config(config, self.base / "oneha.yaml")
        self.procs = local.Processes(path, self.base / "logs")
        self.procs.oneha("gateway", "serve", "--port", str(port), "--workers", "2")
        self.procs.oneha("worker", "worker", "--concurrency", "2")
        self.procs.oneha("beat", "beat")
        wait_ready(self.url, 60, self.procs)
        from gateway.adapters import hooks
        from gateway.adapters.opennebula import OpenNebula
        self.one = OpenNebula(self.sim.endpoints, self.sim.session, timeout=3.0)
        hooks.install(self.one, hooks.load_templates(command=str(hooks.sender_path())))
        return self

    def stop(self) -> None:
        for closer in (self.procs and self.procs.stop_all, self.sim and self.sim.stop,
                       self.smtp and (lambda: self.smtp.__exit__(None, None, None)),
                       self.chat and (lambda: self.chat.__exit__(None, None, None))):
            if closer:
                closer()

    # -- what people were told ---------------------------------------------------------------
    def told(self, receiver: str) -> list[Told]:
        """Every message `receiver` (mail | chat) got so far, in arrival order."""
        now = time.time()
        raw = ([(m, m.subject, m.text) for m in self.smtp.messages] if receiver == "mail"
               else [(c, c.title, c.message) for c in self.chat.messages])
        return [Told(receiver, title, body, self._seen.setdefault(id(obj), now))
                for obj, title, body in raw]

    def wait(self, what: str, predicate, timeout: float = 90.0, interval: float = 0.1):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.told("mail"), self.told("chat")  # stamp arrivals as they are seen
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; told:\n"
                             + "\n".join(f"  {t.receiver}: {t.title}"
                                         for r in ("mail", "chat") for t in self.told(r))
                             + f"\nlogs in {self.base / 'logs'}")

    def approval_token(self) -> str | None:
        return approval_token(t.body for t in self.told("mail") + self.told("chat"))

    def approve(self, token: str, approver: str = "alice") -> dict:
        status, body = post_json(f"{self.url}/v1/approvals/{token}",
                                 {"decision": "approve", "approver": approver},
                                 token=self.api_token)
        assert status == 200, f"approval answered {status}: {body}"
        return body

    # -- the cloud -----------------------------------------------------------------------------
    def vms_on(self, host_name: str) -> list[dict]:
        host = next(h for h in self.sim.hosts() if h["name"] == host_name)
        return [self.sim.vm(i) for i in host["vm_ids"]]

    def running_elsewhere(self, vm_ids, host_id: int) -> bool:
        return running_elsewhere(self.sim, list(vm_ids), host_id)

    def writes(self) -> list[dict]:
        """The write calls oneha made to OpenNebula (the hooks' own calls are not writes)."""
        return [a for a in self.sim.action_log if a["ok"] and a["method"] in
                ("one.vm.action", "one.vm.recover", "one.vm.deploy", "one.host.status")]
