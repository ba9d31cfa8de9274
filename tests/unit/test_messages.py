"""Rendering a notification as people will read it: per transition, per kind, hostile input."""

import json

import pytest

from gateway.domain.messages import MAIL_AFFECTED_SHOWN, render
from gateway.domain.notifications import TRANSITIONS, Notification, notification_id_for

T0 = 1764090000.0  # 2025-11-25T17:00:00Z


def incident(**extra):
    base = {
        "id": "inc-7", "title": "Host node07 is in ERROR — 3 VMs affected", "status": "firing",
        "severity": "critical", "started_at": T0,
        "object": {"resource": "HOST", "id": 7, "name": "node07", "state_label": "ERROR",
                   "cluster": "default"},
        "affected": [{"resource": "VM", "id": 100 + k, "name": f"web-{k:03d}",
                      "state_label": "ACTIVE/UNKNOWN", "host": "node07"} for k in range(3)],
        "next_step": "waiting for approval to recover 3 VMs",
        "console_url": "http://gw:8080/incidents/inc-7",
    }
    base.update(extra)
    return base


def note(transition="firing", created_at=T0 + 120, receiver="ops", **extra):
    return Notification(notification_id_for("inc-7", transition, 1, receiver), receiver,
                        transition, incident(**extra), created_at)


PREFIXES = {"firing": "[FIRING]", "repeat": "[STILL FIRING]", "resolved": "[RESOLVED]",
            "escalated": "[ESCALATED]", "approval_requested": "[APPROVAL NEEDED]",
            "remediation_failed": "[NEEDS A HUMAN]", "needs_human": "[NEEDS A HUMAN]",
            "progress": "[PROGRESS]", "test": "[TEST]"}
INTROS = {"firing": "oneha detected a problem.",
          "repeat": "Reminder: this problem is still open since 2025-11-25T17:00:00Z (2m 00s).",
          "resolved": "This incident is resolved.",
          "escalated": "Escalated to you (ops): nobody acknowledged this incident",
          "approval_requested": "needs a human to approve it",
          "remediation_failed": "a human has to look at it now",
          "needs_human": "a human has to look at it now",
          "progress": "Remediation of this incident moved on.",
          "test": "This is a test message from oneha to receiver ops"}
TYPES = {"firing": "failure", "repeat": "failure", "resolved": "success", "escalated": "failure",
         "approval_requested": "warning", "remediation_failed": "failure",
         "needs_human": "failure", "progress": "info", "test": "info"}


@pytest.mark.parametrize("transition", TRANSITIONS)
def test_each_transition_has_its_own_wording_in_chat_and_mail(transition):
    chat, mail = render(note(transition), "chat"), render(note(transition), "mail")
    assert chat.title == f"{PREFIXES[transition]} Host node07 is in ERROR — 3 VMs affected"
    assert mail.title.startswith(chat.title)
    assert INTROS[transition] in mail.body
    assert chat.notify_type == mail.notify_type == TYPES[transition]
    assert 1 <= len(chat.body.strip().splitlines()) <= 3
    assert "\n" not in mail.title
    # The footer names the incident, never an internal notification id.
    assert "inc-7:" not in mail.body
    if transition != "test":
        assert "oneha · incident inc-7 · sent 2025-11-25T17:02:00Z" in mail.body


def test_firing_mail_names_object_state_time_affected_and_next_step():
    body = render(note("firing"), "mail").body
    for line in ("Object:     HOST node07 (#7)", "State:      ERROR", "Cluster:    default",
                 "Started:    2025-11-25T17:00:00Z", "Affected (3):",
                 "  - VM web-002 (#102) ACTIVE/UNKNOWN on node07", "What oneha will do next:",
                 "  waiting for approval to recover 3 VMs",
                 "Console: http://gw:8080/incidents/inc-7"):
        assert line in body.splitlines(), line


def test_firing_chat_is_short_and_says_what_where_since_and_next():
    lines = render(note("firing"), "chat").body.strip().splitlines()
    assert lines == [
        "HOST node07 (#7) is in ERROR (cluster default) since 2025-11-25T17:00:00Z (2m 00s).",
        "3 affected: web-000, web-001, web-002.",
        "Next: waiting for approval to recover 3 VMs — <http://gw:8080/incidents/inc-7>",
    ]


def test_vm_chat_names_its_host():
    n = note(object={"resource": "VM", "id": 42, "name": "db-1", "state_label": "ACTIVE/UNKNOWN",
                     "host": "node03"}, affected=[], next_step="", console_url="")
    assert render(n, "chat").body.strip() == (
        "VM db-1 (#42) is in ACTIVE/UNKNOWN on host node03 since 2025-11-25T17:00:00Z (2m 00s).")
    assert "Host:       node03" in render(n, "mail").body.splitlines()


def test_200_affected_vms_are_cut_with_a_count_in_mail_and_chat():
    vms = [{"resource": "VM", "id": k, "name": f"vm-{k}", "state_label": "ACTIVE/UNKNOWN",
            "host": "node07"} for k in range(200)]
    n = note(affected=vms)
    mail, chat = render(n, "mail").body, render(n, "chat").body
    listed = [line for line in mail.splitlines() if line.startswith("  - VM vm-")]
    assert len(listed) == MAIL_AFFECTED_SHOWN
    assert "Affected (200):" in mail
    assert f"  … and {200 - MAIL_AFFECTED_SHOWN} more (200 in total)" in mail.splitlines()
    assert "200 affected: vm-0, vm-1, vm-2 and 197 more." in chat.splitlines()
    assert len(mail) < 6000


def test_affected_count_from_a_producer_that_sent_only_a_sample_is_believed():
    n = note(affected_count=500)
    assert "Affected (500):" in render(n, "mail").body
    assert "  … and 497 more (500 in total)" in render(n, "mail").body.splitlines()
    assert "500 affected: web-000, web-001, web-002 and 497 more." in render(n, "chat").body


def test_approval_request_carries_the_plan_and_the_link():
    plan = [{"vm_id": 100, "vm_name": "web-000", "action": "recover --recreate",
             "reason": "host down, non-persistent disks"}]
    n = note("approval_requested", plan=plan, approval_url="http://gw:8080/approvals/a1?token=t")
    mail, chat = render(n, "mail").body, render(n, "chat").body
    assert "  - VM web-000 (#100): recover --recreate — host down, non-persistent disks" in mail
    assert "Approve or deny the plan:\n  http://gw:8080/approvals/a1?token=t" in mail
    assert chat.strip().splitlines()[-1] == ("Next: waiting for approval to recover 3 VMs — "
                                             "approve or deny: <http://gw:8080/approvals/a1?token=t>")


def test_resolve_mail_has_the_impact_table_and_no_stale_plan_or_link():
    impact = [{"vm_id": 100, "vm_name": "web-000", "downtime_s": 312.4, "memory_lost": True,
               "connections_dropped": True, "data_loss_risk": "changes since deploy lost"},
              {"vm_id": 101, "vm_name": "web-001", "downtime_s": 61, "memory_lost": False,
               "connections_dropped": None, "data_loss_risk": "none"}]
    n = note("resolved", resolved_at=T0 + 600, status="resolved", impact=impact,
             approval_url="http://gw/approvals/x", plan=[{"vm_id": 1, "action": "resched"}])
    mail = render(n, "mail").body.splitlines()
    assert "This incident is resolved at 2025-11-25T17:10:00Z after 10m 00s." in mail
    assert "Resolved:   2025-11-25T17:10:00Z" in mail
    header = next(i for i, line in enumerate(mail) if line.startswith("  VM "))
    assert mail[header].split() == ["VM", "Downtime", "Memory", "lost", "Connections", "dropped",
                                    "Data-loss", "risk"]
    assert mail[header + 2].split() == ["web-000", "(#100)", "5m", "12s", "yes", "yes", "changes",
                                        "since", "deploy", "lost"]
    assert mail[header + 3].split() == ["web-001", "(#101)", "1m", "01s", "no", "unknown", "none"]
    assert not any("approvals" in line or "Plan" in line for line in mail)
    chat = render(n, "chat").body.splitlines()
    assert chat[:2] == ["HOST node07 (#7) resolved at 2025-11-25T17:10:00Z after 10m 00s.",
                        "Impact: 2 VM(s), memory state lost on 1, longest downtime 5m 12s."]


def test_timeline_shows_the_last_ten_entries_in_utc():
    n = note("resolved", timeline=[{"t": T0 + k * 60, "text": f"step {k}"} for k in range(12)])
    mail = render(n, "mail").body.splitlines()
    assert "Timeline (last 10 of 12):" in mail
    assert "  2025-11-25T17:02:00Z  step 2" in mail
    assert "  2025-11-25T17:11:00Z  step 11" in mail
    assert not any(line.endswith("step 1") for line in mail)


def test_object_names_cannot_break_the_subject_or_the_layout():
    evil = "web\r\nSubject: spoofed\x00\u202e" + "x" * 500
    n = note(title=f"VM {evil} is down", affected=[{"resource": "VM", "id": 1, "name": evil}],
             object={"resource": "VM", "id": 1, "name": evil, "state_label": "ACTIVE/UNKNOWN"})
    for kind in ("mail", "chat"):
        m = render(n, kind)
        assert "\n" not in m.title and "\r" not in m.title and "\u202e" not in m.title
        assert len(m.title) <= 250
        assert "\x00" not in m.body and "\r" not in m.body and "\u202e" not in m.body
        assert not any(line.startswith("Subject:") for line in m.body.splitlines())
        assert "web Subject: spoofed" in m.body
    assert max(len(line) for line in render(n, "mail").body.splitlines()) < 300


def test_a_minimal_incident_still_renders_a_non_empty_message():
    n = Notification("i:firing:1:ops", "ops", "firing", {"id": "i", "title": "Something broke"},
                     T0)
    chat, mail = render(n, "chat"), render(n, "mail")
    assert chat.title == "[FIRING] Something broke" and chat.body == "Incident i.\n"
    assert "Started:" not in mail.body and "Object:" not in mail.body
    assert "Something broke" in mail.body


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind 'sms'"):
        render(note(), "sms")


def test_notification_round_trips_and_refuses_what_a_worker_could_not_deliver():
    n = note("resolved")
    assert Notification.from_json(n.to_json()) == n
    assert json.loads(n.to_json())["notification_id"] == "inc-7:resolved:1:ops"
    with pytest.raises(ValueError, match="transition 'fired'"):
        Notification("x", "ops", "fired", {"id": "1", "title": "t"}, T0)
    with pytest.raises(ValueError, match="'id' and 'title'"):
        Notification("x", "ops", "firing", {"id": "1"}, T0)
    with pytest.raises(ValueError, match="lacks receiver"):
        Notification.from_json('{"notification_id":"x","transition":"firing","incident":{},'
                               '"created_at":1}')


def test_impact_shows_the_action_and_a_vm_not_running_yet():
    impact = [{"vm_id": 1, "vm_name": "a", "action": "recover --recreate", "downtime_s": None,
               "memory_lost": True, "connections_dropped": True, "data_loss_risk": "back to image"}]
    n = Notification("x:resolved:1:ops", "ops", "resolved",
                     {"id": "x", "title": "T", "impact": impact}, T0)
    mail = render(n, "mail").body.splitlines()
    header = next(i for i, line in enumerate(mail) if line.startswith("  VM "))
    assert mail[header].split()[:3] == ["VM", "Action", "Downtime"]
    assert mail[header + 2].split()[:7] == ["a", "(#1)", "recover", "--recreate", "not", "running",
                                            "yet"]
    assert render(n, "chat").body.splitlines() == ["Incident x resolved.",
                                                   "Impact: 1 VM(s), memory state lost on 1."]


def test_a_count_without_a_list_of_affected_objects_reads_well_in_chat_and_mail():
    n = note("remediation_failed", affected=[], affected_count=5)
    assert "5 affected." in render(n, "chat").body.splitlines()
    mail = render(n, "mail").body.splitlines()
    assert "Affected:   5" in mail and not any("more" in line for line in mail)


def test_a_front_end_finding_carries_its_recovery_steps_into_the_mail():
    steps = ["Follower fe3 is 300000 entries behind the leader, beyond LOG_RETENTION=250000.",
             "1. On the leader: onedb backup, copy it to fe3",
             "5. On the leader: onezone server-reset 0 2"]
    n = Notification(notification_id="f:firing:1:mail", receiver="mail", transition="firing",
                     incident={"id": "f", "title": "Front-end fe3 needs a manual recovery",
                               "details": steps}, created_at=0.0)
    mail = render(n, "mail").body
    for line in steps:
        assert f"  {line}" in mail.splitlines()


def test_an_alertmanager_alert_speaks_with_its_own_words_and_says_oneha_only_notifies():
    from gateway.domain.alertmanager import events_from_webhook
    from gateway.domain.correlation import Context, decide
    from gateway.domain.story import summary

    (event,) = events_from_webhook({"version": "4", "alerts": [{
        "status": "firing", "fingerprint": "0f712bf7bb55827e",
        "labels": {"alertname": "OpenNebulaHostDown", "host": "kvm07", "severity": "critical"},
        "annotations": {"summary": "Host kvm07 is down",
                        "description": "node_exporter on kvm07 has not answered for 5 minutes."},
        "startsAt": "2025-11-25T17:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]})
    out = decide(event, Context(), T0 + 10)
    inc = out.save[0]
    n = Notification("g:firing:1:ops", "ops", "firing",
                     summary(inc, out.timeline[inc.id], console_url="http://gw/incidents/a"),
                     T0 + 40)
    chat, mail = render(n, "chat"), render(n, "mail")
    assert chat.title == "[FIRING] Host kvm07 is down"
    assert chat.body.splitlines()[:2] == [
        "Host kvm07 is down", "node_exporter on kvm07 has not answered for 5 minutes."]
    assert "oneha only notifies for this alert" in chat.body
    assert "0f712bf7bb55827e" not in chat.body  # the fingerprint is Alertmanager's id
    for text in (chat.body, mail.body, mail.html):
        assert "ALERT/OpenNebulaHostDown" not in text and "remediation follows" not in text
    lines = mail.body.splitlines()
    assert "Object:     ALERT OpenNebulaHostDown" in lines
    assert "Labels:     alertname=OpenNebulaHostDown, host=kvm07, severity=critical" in lines
    assert "  node_exporter on kvm07 has not answered for 5 minutes." in lines


def test_a_chat_message_stays_short_however_many_notices_the_incident_has():
    notices = [{"kind": "needs_human", "text": f"VM web-{k} ({k}) was not recovered"}
               for k in range(12)]
    body = render(note("needs_human", notices=notices), "chat").body.splitlines()
    assert len(body) <= 10, body
    assert "… and 8 earlier (see the console)" in body
    assert "- VM web-11 (11) was not recovered" in body and "- VM web-7 (7) was not recovered" \
        not in body


def test_a_worker_compiles_every_template_in_every_language_before_its_first_message():
    from gateway.domain import i18n, messages

    messages._env.cache_clear()
    messages.compile_templates()
    assert messages._env.cache_info().currsize == len(i18n.LANGUAGES)
    for lang in i18n.LANGUAGES:
        cached = messages._env(lang).cache  # jinja's compiled-template cache
        assert {key[1] for key in cached} >= set(messages.TEMPLATES)
