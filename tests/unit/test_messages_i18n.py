"""A receiver's language: every message of an incident's story reads in Brazilian Portuguese for
a `pt-BR` receiver, English ones are unchanged, and a notification recorded before titles and
notices were data (no `headline`, no notice `code`) still renders in both languages."""

import re
from dataclasses import replace

import jinja2
import pytest

from gateway.domain import composer, i18n, impact, messages, phrases
from gateway.domain.correlation import Context, decide
from gateway.domain.events import Event
from gateway.domain.grouping import GroupState, plan_flush
from gateway.domain.incidents import transition
from gateway.domain.messages import render
from gateway.domain.notifications import Notification, notification_id_for
from gateway.domain.objects import Disk, HistoryRecord, VmInfo
from gateway.domain.routing import Route, match_routes
from gateway.domain.story import summary

T0 = 1_764_090_000.0
URL = "http://gw:8080"
APPROVAL = f"{URL}/approvals/tok.sig"
ROUTE = match_routes(Route.model_validate({"group_wait": "30s", "group_interval": "5m",
                                           "repeat_interval": "4h"}),
                     {"host": "node07"}, ["mail"])[0]
STORY = ("firing", "approval_requested", "needs_human", "resolved", "repeat", "escalated", "test")
_n = iter(range(10**6))


def event(resource: str, oid: int, state: int, lcm: int | None = None) -> Event:
    cond = "HOST/ERROR" if resource == "HOST" else "VM/ACTIVE/UNKNOWN"
    return Event(event_id=f"{next(_n):032x}", source="test", resource=resource,
                 object_id=str(oid), name="node07" if resource == "HOST" else f"web-{oid}",
                 status="firing", condition=cond, occurred_at=T0, state=state, lcm_state=lcm,
                 labels={"host": "node07", "host_id": "7"})


def host_incident():
    """node07 in ERROR with three VMs lost with it, and the timeline the decisions wrote."""
    out = decide(event("HOST", 7, 3), Context(), T0)
    inc, timeline = out.save[0], list(out.timeline[out.save[0].id])
    for vm in (100, 101, 102):
        out = decide(event("VM", vm, 3, 16), Context(host_incident=inc), T0 + 1)
        inc, timeline = out.save[0], timeline + list(out.timeline[inc.id])
    return inc, timeline


def told(inc, kind: str, code: str, params: dict, at: float, **kw):
    """The incident with a notice as remediation's port records it."""
    return inc.with_notice(kind, f"p1:{code}", phrases.say("en", code, params), at, code=code,
                           params=params, **kw)


def impact_rows() -> list[dict]:
    before = VmInfo(id=100, name="web-100", state=3, lcm_state=16, last_poll=T0 - 20,
                    history=(HistoryRecord(seq=0, host_id=7, host_name="node07", rstime=1),),
                    disks=(Disk(0, 1, "data", True, 1, "ds", "shared"),
                           Disk(1, 2, "", False, 0, "system", "ssh")))
    after = replace(before, lcm_state=3, history=before.history + (
        HistoryRecord(seq=1, host_id=2, host_name="node02", rstime=T0 + 95),))
    return [impact.vm_impact(before, after, "resched", T0).to_dict(),
            impact.vm_impact(replace(before, id=101, name="web-101"), before, "recreate",
                             T0).to_dict()]


def story_notifications() -> dict[str, Notification]:
    """One notification per step of a host failure's story, made as the incident flow makes
    them (plan_flush → composer); the rest from the same summaries."""
    inc, timeline = host_incident()
    summaries = lambda i: {i.id: summary(i, timeline, console_url=f"{URL}/incidents/{i.id}")}
    g = GroupState.new(ROUTE, "root|host=node07", T0)
    out: dict[str, Notification] = {}

    def flush(state, i, at):
        plan = plan_flush(state, [i], {}, at)
        assert plan.send, plan.reason
        (n,), after = composer.group_messages(plan, state, summaries(i), {}, at)
        out[n.transition] = n
        return after

    state = flush(g, inc, T0 + 30)
    inc = told(inc, "approval_requested", "approval_needed",
               {"actions": ["resched"], "count": 3, "plan": "p1", "until": "2025-11-25T18:00:00Z",
                "warnings": []}, T0 + 40, approval_url=APPROVAL,
               plan=[{"vm_id": 100 + k, "vm_name": f"web-{100 + k}", "action": "resched",
                      "reason": "system datastore is shared: reschedule to another host"}
                     for k in range(3)])
    state = flush(state, inc, T0 + 40)
    for code, params in (
            ("left_alone", {"count": 2, "left": {"wont_fit": ["web-101 (101)"],
                                                 "opt_out": ["web-102 (102)"]},
                            "example": "needs 4096 MB and 2 CPU; no remaining host has room"}),
            ("vm_gave_up", {"vm": "web-100", "id": 100, "attempts": 4, "why": "gave_up",
                            "reason": "gave up after 4 attempts; needs a human"}),
            ("host_step_failed", {"action": "disable_host", "host": "node07",
                                  "error": "[one.host.status] timeout"}),
            ("plan_stopped", {"plan": "p1", "error": "[one.vm.recover] timeout"})):
        inc = told(inc, "needs_human", code, params, T0 + 50)
    state = flush(state, inc, T0 + 50)
    inc, _ = transition(replace(inc, impact=impact_rows()), "resolved", "VMs run again", "oneha",
                        T0 + 400)
    flush(state, inc, T0 + 400)
    open_summary = summaries(host_incident()[0])
    (first,) = open_summary.values()
    out["repeat"] = Notification(notification_id_for(first["id"], "repeat", 9, "mail"), "mail",
                                 "repeat", first, T0 + 4 * 3600)
    out["escalated"] = composer.escalation_message(host_incident()[0], first, 0, "lead",
                                                   "unacknowledged for 600s", T0 + 600)
    out["test"] = Notification("test-1:test:0:mail", "mail", "test",
                               {"id": "test-1", "title": "oneha test notification",
                                "headline": {"key": "test_message"}}, T0)
    return out


NOTES = story_notifications()


def _has(text: str, piece: str) -> bool:
    return re.search(rf"(?<![A-Za-z]){re.escape(piece)}(?![A-Za-z])", text) is not None


def english_static_texts() -> list[str]:
    """The English of every catalog text (placeholders cut out) that its translation does not
    share, plus what the English phrases of titles, next steps and notices are made of."""
    found = {"affected", "recovered", "will not be recovered", "was not recovered", "attempt",
             "leaves it alone", "Approval needed", "Warning", "stops the reminders",
             "plans a recovery", "changes since deploy", "shared storage", "run again",
             "elsewhere", "is in ERROR", "Plan (", "actions):"}
    for english, translated in i18n.PT_BR.items():
        translated = " ".join(translated) if isinstance(translated, tuple) else translated
        for piece in re.split(r"%\(\w+\)[sd]", english):
            piece = piece.strip(" .,:;()—-…[]")
            if re.search(r"[A-Za-z]{4,}", piece) and not _has(translated, piece):
                found.add(piece)
    return sorted(found)


ENGLISH = english_static_texts()


def without_timeline(body: str) -> str:
    """The timeline's lines are told as recorded (English) under a Portuguese heading."""
    return re.sub(r"(?m)^  \d{4}-\d\d-\d\dT\S+  .*$", "", body)


@pytest.mark.parametrize("kind", messages.KINDS)
@pytest.mark.parametrize("transition_", STORY)
def test_a_pt_br_receiver_reads_no_english_sentence(transition_, kind):
    n = NOTES[transition_]
    m = render(n, kind, "pt-BR")
    text = m.title + "\n" + without_timeline(m.body)
    left = [e for e in ENGLISH if _has(text, e)]
    assert not left, f"English left in {transition_}/{kind}: {left}\n{text}"
    assert n.incident["title"] not in text  # the recorded (English) title is phrased anew


@pytest.mark.parametrize("transition_", STORY)
def test_english_is_the_default_and_says_what_was_recorded(transition_):
    n = NOTES[transition_]
    for kind in messages.KINDS:
        assert render(n, kind) == render(n, kind, "en")
    assert render(n, "chat").title.endswith(n.incident["title"])


def test_the_portuguese_story_as_an_operator_writes_it():
    firing = render(NOTES["firing"], "chat", "pt-BR")
    assert firing.title == "[ALERTA] Host node07 em ERRO — 3 VMs afetadas"
    assert "Afetados (3): web-100, web-101, web-102." in firing.body
    approval = render(NOTES["approval_requested"], "chat", "pt-BR")
    assert approval.title.startswith("[APROVAÇÃO NECESSÁRIA] Host node07 em ERRO")
    assert f"Aprovar ou negar: <{APPROVAL}>" in approval.body.splitlines()
    # chat names no internal id (the plan's); the mail does
    assert ("Aprovação necessária: resched em 3 VMs; o link abaixo vale até "
            "2025-11-25T18:00:00Z.") in approval.body
    assert "(plano p1)" in render(NOTES["approval_requested"], "mail", "pt-BR").body
    human = render(NOTES["needs_human"], "mail", "pt-BR")
    assert human.title.startswith("[PRECISA DE UMA PESSOA] ")
    assert "  - 2 VMs não serão recuperadas pelo oneha — nenhum host restante tem espaço: " \
           "web-101 (101); fora da remediação pelo ONEHA_POLICY: web-102 (102)." in human.body
    resolved = render(NOTES["resolved"], "mail", "pt-BR").body
    header = next(line for line in resolved.splitlines() if line.startswith("  VM "))
    for column in ("Ação", "Tempo fora do ar", "Memória perdida", "Conexões derrubadas",
                   "Risco de perda de dados"):
        assert column in header
    assert "sim" in resolved and "ainda não voltou" in resolved
    assert "Linha do tempo (registro em inglês" in resolved
    assert render(NOTES["resolved"], "chat", "pt-BR").title == \
        "[RESOLVIDO] Host node07 falhou — suas 2 VMs voltaram a rodar em outros hosts"


def old_notification(transition_: str) -> Notification:
    """As queued before titles and notices were data: no headline, no next, no notice code."""
    incident = {"id": "inc-7", "title": "Host node07 is in ERROR — 3 VMs affected",
                "started_at": T0, "next_step": "oneha plans a recovery",
                "object": {"resource": "HOST", "id": 7, "name": "node07", "state_label": "ERROR"},
                "notices": [{"kind": "needs_human", "text": "VM web-1 (1) was not recovered"}],
                "impact": [{"vm_id": 1, "vm_name": "web-1", "downtime_s": 5, "memory_lost": True,
                            "connections_dropped": True, "data_loss_risk": "no disks reported"}]}
    return Notification(notification_id_for("inc-7", transition_, 1, "ops"), "ops", transition_,
                        incident, T0 + 60)


@pytest.mark.parametrize("transition_", STORY)
def test_an_old_notification_renders_in_both_languages_with_its_recorded_texts(transition_):
    n = old_notification(transition_)
    for kind in messages.KINDS:
        pt, en = render(n, kind, "pt-BR"), render(n, kind, "en")
        assert pt.title.startswith(f"{i18n.gettext('pt-BR', messages._PREFIX[transition_])} "
                                   f"Host node07 is in ERROR — 3 VMs affected")
        assert en.title.startswith("[")
        assert pt.body.strip() and pt.body != en.body
    if transition_ != "test":
        assert "VM web-1 (1) was not recovered" in render(n, "mail", "pt-BR").body


@pytest.mark.parametrize("headline", [
    {"key": "a_key_from_a_later_version", "host": "node07"},
    {"key": "host_failed"},  # its params are missing
    {"key": 7}, "Host node07", None])
def test_a_headline_that_does_not_fit_falls_back_to_the_recorded_title(headline):
    n = old_notification("firing")
    n = replace(n, incident={**n.incident, "headline": headline})
    assert render(n, "chat", "pt-BR").title == "[ALERTA] Host node07 is in ERROR — 3 VMs affected"


def test_every_template_text_and_every_phrase_has_its_portuguese():
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    missing = [msg for path in sorted(messages.TEMPLATE_DIR.glob("*.j2"))
               for _line, _fn, msg in env.extract_translations(path.read_text())
               for msg in ([msg] if isinstance(msg, str) else msg[:1])
               if msg not in i18n.PT_BR]
    assert not missing
    assert set(phrases.PT_BR) == set(phrases.EN)
    words = ["firing", "acknowledged", "remediating", "resolved", "critical", "warning", "info",
             *messages._PREFIX.values()]
    assert not [w for w in words if w not in i18n.PT_BR]


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="'fr'"):
        render(NOTES["firing"], "chat", "fr")


def test_a_host_oneha_disabled_reads_so_in_portuguese_and_keeps_its_state_name():
    inc, _ = host_incident()
    host = replace(inc.primary, state_label="DISABLED" + phrases.BY_ONEHA)
    inc = replace(inc, objects={**inc.objects, inc.key: host})
    n = Notification("x:firing:1:mail", "mail", "firing", summary(inc), T0 + 30)
    assert render(n, "chat", "pt-BR").title == \
        "[ALERTA] Host node07 em DISABLED (pelo oneha) — 3 VMs afetadas"
    assert "Estado:     DISABLED (pelo oneha)" in render(n, "mail", "pt-BR").body.splitlines()
    assert "State:      DISABLED (by oneha)" in render(n, "mail").body.splitlines()


def test_a_sent_message_names_its_delivery_records_on_the_timeline():
    inc, _timeline = host_incident()
    g = GroupState.new(ROUTE, "root|host=node07", T0)
    plan = plan_flush(g, [inc], {}, T0 + 30)
    (n,), _after = composer.group_messages(plan, g, {inc.id: summary(inc, [], console_url="")},
                                           {}, T0 + 30)
    entry = composer.sent_entry(plan, g, T0 + 30)
    assert entry.data["notifications"] == [n.notification_id]  # what the console reads back
