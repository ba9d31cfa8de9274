"""What a receiver's software gets, through apprise to the real SMTP server and chat receiver:
a mail is multipart/alternative, an HTML part with the impact as a table and a text/plain part
that reads line by line; chat is sent as Markdown, short, with its link whole on one line and
no internal id outside a URL."""

import re

from gateway.adapters.notifier import Notifier
from gateway.domain.messages import render
from gateway.domain.notifications import Notification

T0 = 1_764_090_000.0
APPROVAL = "http://gw:8080/approvals/eyJhIjoiYWJjIn0.c2lnbmF0dXJlX3RoYXRfaXNfbG9uZ19lbm91Z2g"


def note(transition: str, **extra) -> Notification:
    incident = {
        "id": "host-7-0f0f0f0f", "title": "Host node07 is in ERROR — 2 VMs affected",
        "headline": {"key": "host_failed", "host": "node07", "state": "ERROR", "vms": 2},
        "status": "firing", "severity": "critical", "started_at": T0,
        "object": {"resource": "HOST", "id": 7, "name": "node07", "state_label": "ERROR"},
        "affected": [{"resource": "VM", "id": 100 + k, "name": f"web-{k}",
                      "state_label": "ACTIVE/UNKNOWN", "host": "node07"} for k in range(2)],
        "next": {"key": "next_plan", "id": "host-7-0f0f0f0f"},
        "next_step": "oneha plans a recovery (a message follows when there is a plan to approve "
                     "or news); `oneha ack host-7-0f0f0f0f` stops the reminders",
        "console_url": "http://gw:8080/incidents/host-7-0f0f0f0f", **extra}
    return Notification(f"g:{transition}:1:ops", "ops", transition, incident, T0 + 60)


IMPACT = [{"vm_id": 100, "vm_name": "web-0 <b>", "action": "resched", "downtime_s": 95,
           "memory_lost": True, "connections_dropped": True,
           "data_loss_risk": "non-persistent, changes since deploy lost"}]


def test_a_mail_has_an_html_table_and_a_plain_part_that_reads_line_by_line(smtp_sink):
    n = note("resolved", impact=IMPACT, status="resolved", resolved_at=T0 + 300)
    result = Notifier(timeout=10).send(smtp_sink.url(to="ops@example.com", sender="ha@x.org"),
                                       render(n, "mail"))
    assert result.ok, result.error
    [mail] = smtp_sink.wait_for(1)
    assert mail.message.get_content_type() == "multipart/alternative"
    html = mail.message.get_body(preferencelist=("html",)).get_content()
    plain = mail.message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert "<table" in html and "<th" in html and ">1m 35s<" in html.replace("\n", "")
    assert "web-0 &lt;b&gt;" in html and "web-0 <b>" not in html  # values are text
    lines = plain.splitlines()
    for line in ("Status: resolved, critical", "Object: HOST node07 (#7)",
                 "web-0 <b> (#100)", "Downtime: 1m 35s", "Memory lost: yes",
                 "Console: http://gw:8080/incidents/host-7-0f0f0f0f"):
        assert line in lines, (line, plain)
    assert "Downtime" not in [line.strip() for line in lines]  # no heading cell on its own


def test_chat_is_markdown_short_with_its_link_whole_and_no_internal_id(chat_sink):
    n = note("approval_requested", approval_url=APPROVAL, notices=[{
        "kind": "approval_requested", "code": "approval_needed",
        "text": "Approval needed: resched 2 VM(s) (plan host-7-0f0f0f0f.1); the link below is "
                "valid until 2025-11-25T18:00:00Z.",
        "params": {"actions": ["resched"], "count": 2, "plan": "host-7-0f0f0f0f.1",
                   "until": "2025-11-25T18:00:00Z", "warnings": []}}])
    message = render(n, "chat")
    assert message.body_format == "markdown" and not message.html
    assert Notifier(timeout=10).send(chat_sink.url(), message).ok
    [post] = chat_sink.wait_for(1)
    lines = post.message.splitlines()
    assert len(lines) <= 10
    assert lines[-1] == f"Approve or deny: <{APPROVAL}>"
    outside_urls = re.sub(r"<https?://[^>]+>", "", post.message)
    assert "host-7-0f0f0f0f" not in outside_urls, post.message
    assert "Approval needed: resched 2 VM(s); the link below is valid until" in post.message
    # the mail still names the plan, for `oneha plans` and `oneha approve`
    assert "(plan host-7-0f0f0f0f.1)" in render(n, "mail").body
