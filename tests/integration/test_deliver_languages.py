"""Two receivers of the same incident, one in English and one in Brazilian Portuguese: the real
incident flow on the real Redis (with a fake clock) decides the story, the delivery flow renders
and sends it through apprise to a real SMTP server and a real HTTP chat receiver, and each
receiver reads every message in its own language."""

from __future__ import annotations

import uuid

import pytest
import redis

from gateway.config import settings_from_dict
from gateway.domain.events import Event
from gateway.domain.notifications import Notification
from gateway.flows.delivery import deliver_round
from gateway.flows.incident import IncidentFlow
from gateway.flows.remediation import IncidentPort
from gateway.runtime import Runtime

T0 = 1_764_090_000.0


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self) -> float:
        return self.t


class Sent(list):
    """The flow's task sender: what it hands to `oneha.deliver`, kept for the test to run."""

    def __call__(self, name, args, countdown=None):
        self.append((name, args))

    def take(self) -> list[Notification]:
        out = [Notification.from_json(a[0]) for n, a in self if n == "oneha.deliver"]
        self.clear()
        return out


def event(resource: str, oid: int, state: int, lcm: int | None = None) -> Event:
    return Event(event_id=uuid.uuid4().hex, source="test", resource=resource,
                 object_id=str(oid), name="node07" if resource == "HOST" else f"web-{oid}",
                 status="firing", condition="HOST/ERROR" if resource == "HOST"
                 else "VM/ACTIVE/UNKNOWN", occurred_at=T0, state=state, lcm_state=lcm,
                 labels={"host": "node07", "host_id": "7"})


@pytest.fixture
def stack(redis_url, key_prefix, smtp_sink, chat_sink):
    settings = settings_from_dict({
        "redis_url": redis_url, "key_prefix": key_prefix, "public_url": "http://gw:8080",
        "receivers": [
            {"name": "ops", "urls": [smtp_sink.url(to="ops@example.com"), chat_sink.url("ops")]},
            {"name": "equipe", "language": "pt-BR",
             "urls": [smtp_sink.url(to="equipe@example.com"), chat_sink.url("equipe")]}],
        "route": {"group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"},
        "notify": {"max_attempts": 2, "backoff_base": "50ms", "backoff_max": "100ms",
                   "send_timeout": "5s"}}, env={})
    clock, sent = Clock(), Sent()
    rt = Runtime(settings=settings, redis=redis.Redis.from_url(redis_url), clock=clock)
    return rt, IncidentFlow(rt, send=sent), clock, sent


def deliver(rt: Runtime, notifications: list[Notification]) -> None:
    assert {n.receiver for n in notifications} == {"ops", "equipe"}
    for n in notifications:
        assert deliver_round(rt, n).status == "sent", n.notification_id


def test_each_receiver_reads_the_incident_in_its_language(stack, smtp_sink, chat_sink):
    rt, flow, clock, sent = stack
    iid = flow.apply_event(event("HOST", 7, 3)).decision.incident_id
    for vm in (100, 101):
        flow.apply_event(event("VM", vm, 3, 16))
    # Remediation's approval request, as its port records it, ready within group_wait.
    IncidentPort(flow, clock=clock).add_notice(
        iid, "approval_requested", "p1:approval", "approval_needed",
        {"actions": ["resched"], "count": 2, "plan": "p1", "until": "2025-11-25T18:00:00Z",
         "warnings": []}, approval_url="http://gw:8080/approvals/tok.sig",
        plan=[{"vm_id": vm, "vm_name": f"web-{vm}", "action": "resched", "reason": ""}
              for vm in (100, 101)])
    sent.clear()
    clock.t = T0 + 30
    flow.flush_due()
    deliver(rt, sent.take())
    flow.transition(iid, "resolved", "the host is back", "alice")
    clock.t = T0 + 30 + 300
    flow.flush_due()
    deliver(rt, sent.take())

    mails = smtp_sink.wait_for(4)
    ops = [m for m in mails if m.rcpt_tos == ["ops@example.com"]]
    equipe = [m for m in mails if m.rcpt_tos == ["equipe@example.com"]]
    assert [m.subject for m in ops] == [
        f"[FIRING] Host node07 is in ERROR — 2 VMs affected [oneha {iid}]",
        f"[RESOLVED] Host node07 recovered (was in ERROR) — 2 VMs affected [oneha {iid}]"]
    assert [m.subject for m in equipe] == [
        f"[ALERTA] Host node07 em ERRO — 2 VMs afetadas [oneha {iid}]",
        f"[RESOLVIDO] Host node07 recuperado (estava em ERRO) — 2 VMs afetadas [oneha {iid}]"]
    assert "oneha detected a problem." in ops[0].text
    assert "Approval needed: resched 2 VM(s) (plan p1)" in ops[0].text
    for line in ("O oneha detectou um problema.", "Plano (2 ações)", "Aprove ou negue o plano",
                 "Aprovação necessária: resched em 2 VMs (plano p1); o link abaixo vale até "
                 "2025-11-25T18:00:00Z.", f"oneha · incidente {iid} · enviado em"):
        assert line in equipe[0].text, line
    assert "Este incidente foi resolvido em" in equipe[1].text
    assert not any(s in m.text for m in equipe for s in ("oneha detected", "Approve or deny",
                                                         "What oneha will do next", "resolved at"))

    posts = chat_sink.wait_for(4)
    by_path = {p.path: [q for q in posts if q.path == p.path] for p in posts}
    assert [p.title for p in by_path["/ops"]] == [
        "[FIRING] Host node07 is in ERROR — 2 VMs affected",
        "[RESOLVED] Host node07 recovered (was in ERROR) — 2 VMs affected"]
    pt_first, pt_resolved = by_path["/equipe"]
    assert pt_first.title == "[ALERTA] Host node07 em ERRO — 2 VMs afetadas"
    assert "aprovar ou negar: <http://gw:8080/approvals/tok.sig>" in pt_first.message
    assert "Afetados (2): web-100, web-101." in pt_first.message
    assert pt_resolved.message.startswith("Resolvido em ")
