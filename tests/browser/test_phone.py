"""The console and the approval page as people use them from a phone, in Chromium (Debian's,
driven by Playwright) against the real processes: the simulator's hooks → `oneha serve`
(gunicorn) → `oneha worker` and `oneha beat` → a real SMTP server and chat receiver.

At 390×844 no page is wider than the screen, tables read as cards, Approve and Deny are on
the first screen; a host failure is approved from the phone and resolves with its impact
report; each receiver's delivery result is on the incident page; a silence is created and
expired from the console; the pages read in Portuguese for a Portuguese browser and after the
switch. Each page is saved at 1280 and 390 px wide (in the test's tmp dir, or
$ONEHA_SCREENSHOTS when set) to be looked at.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from gateway.demo import demo_cloud
from tests.support.auth import PASSWORDS, auth_section
from tests.support.stack import Stack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
PAGES = ("/", "/silences", "/raft", "/events", "/audit", "/config")


def shots_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("ONEHA_SCREENSHOTS") or tmp_path / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


def wider_than_the_screen(page) -> dict | None:
    """None when nothing scrolls sideways; else the widths and the widest elements."""
    found = page.evaluate("""() => {
        const root = document.documentElement, width = window.innerWidth;
        if (root.scrollWidth <= width) return null;
        const wide = [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > width + 0.5)
            .slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + ' '
                                  + Math.round(e.getBoundingClientRect().right));
        return {scrollWidth: root.scrollWidth, innerWidth: width, wide};
    }""")
    return found


def login(page, base: str, role: str, then: str) -> None:
    page.goto(f"{base}/login?next={then}")
    page.fill("#name", role)
    page.fill("#password", PASSWORDS[role])
    with page.expect_navigation():
        page.click("#login")


def look(page, url: str, name: str, out: Path) -> None:
    """The page at phone and desk width: saved, and never wider than the phone's screen."""
    for size, tag in ((PHONE, "390"), (DESK, "1280")):
        page.set_viewport_size(size)
        response = page.goto(url)
        assert response.status == 200, (url, response.status)
        page.wait_for_load_state("load")
        page.screenshot(path=str(out / f"{name}-{tag}.png"), full_page=True)
        if tag == "390":
            assert wider_than_the_screen(page) is None, (url, wider_than_the_screen(page))


@pytest.fixture
def stack(key_prefix, tmp_path, monkeypatch):
    with Stack(demo_cloud(), key_prefix, tmp_path, monkeypatch,
               receivers={"oncall-chat": {"language": "pt-BR"}},
               auth=auth_section()) as s:
        yield s


def test_from_a_phone_a_host_failure_is_approved_and_every_page_fits(stack, browser, tmp_path):
    out = shots_dir(tmp_path)
    context = browser.new_context(viewport=PHONE, locale="en-US", timezone_id="America/Sao_Paulo")
    page = context.new_page()
    try:
        stack.sim.crash_host(0)
        chat = stack.wait("the approval request in chat (pt-BR)", lambda: [
            t for t in stack.told("chat") if t.title.startswith("[APROVAÇÃO NECESSÁRIA]")])
        token = stack.approval_token()
        approval = f"{stack.url}/approvals/{token}"
        assert len(chat[-1].text.splitlines()) <= 10, chat[-1].text
        assert approval in chat[-1].text.splitlines()[-1]  # the link whole, on a line of its own

        # The open incident: acknowledge and silence its host from the first screen.
        login(page, stack.url, "approver", "/")
        (incident_id,) = _incident_ids(stack)
        page.goto(f"{stack.url}/incidents/{incident_id}")
        for action in ("#ack", "#silence-host"):
            box = page.locator(action).bounding_box()
            assert box and box["y"] + box["height"] <= PHONE["height"], (action, box)
        assert wider_than_the_screen(page) is None, wider_than_the_screen(page)
        page.screenshot(path=str(out / "incident-open-390.png"), full_page=True)

        # The approval page from the chat message: Approve and Deny on the first screen.
        page.set_viewport_size(PHONE)
        page.goto(approval)
        for button in ("#approve", "#deny"):
            box = page.locator(button).bounding_box()
            assert box and box["y"] + box["height"] <= PHONE["height"], (button, box)
        assert wider_than_the_screen(page) is None, wider_than_the_screen(page)
        assert not re.search(r"\b1[0-9]{9}\b", page.inner_text("#decide"))  # no unix time
        expires = page.locator("#expires time")  # the reader's zone (São Paulo) and how soon
        assert expires.get_attribute("data-local") == "1" and "in 1 hr" in expires.inner_text()
        page.screenshot(path=str(out / "approval-390.png"), full_page=True)
        page.set_viewport_size(DESK)
        page.screenshot(path=str(out / "approval-1280.png"), full_page=True)
        page.set_viewport_size(PHONE)
        with page.expect_navigation() as nav:
            page.click("#approve")
        assert nav.value.status == 200
        page.screenshot(path=str(out / "approved-390.png"), full_page=True)

        stack.wait("the resolve messages", lambda: [
            t for t in stack.told("mail") + stack.told("chat") if t.kind in ("RESOLVED",
                                                                                "RESOLVIDO")])
        url = f"{stack.url}/incidents/{incident_id}"
        # each receiver's delivery result, once the worker recorded it
        deadline = time.monotonic() + 30
        while True:
            page.goto(url)
            states = {(r.get_attribute("data-receiver"), r.get_attribute("data-state"))
                      for r in page.locator("#deliveries tr.delivery").all()}
            # every message of the story delivered to both (a last one may still be sending)
            if {r for r, _ in states} == {"oncall-mail", "oncall-chat"} and \
                    {s for _, s in states} == {"sent"} and page.locator("#impact").count():
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.3)
        assert page.locator("#deliveries tr.delivery").count() >= 6  # 3 messages x 2 receivers
        assert page.locator("#impact tbody tr").count() == 4  # node01's four VMs
        # Times are the reader's (São Paulo, UTC-3) and relative
        first = page.locator("#timeline time").first
        assert first.get_attribute("data-local") == "1"
        assert "ago" in first.inner_text()
        look(page, url, "incident", out)
        assert page.goto(stack.url + "/config").status == 403  # an approver's is not an admin's

        page.context.clear_cookies()
        login(page, stack.url, "admin", "/config")
        page.set_viewport_size(PHONE)
        page.goto(stack.url + "/config")
        with page.expect_navigation():
            page.locator("tr[data-receiver=oncall-chat] button.send-test").click()
        assert "1 of 1 URL(s) delivered" in page.inner_text("#test-result")
        stack.wait("the test message", lambda: [t for t in stack.told("chat")
                                                if t.title.startswith("[TESTE]")], 10)
        assert wider_than_the_screen(page) is None, wider_than_the_screen(page)
        page.screenshot(path=str(out / "config-tested-390.png"), full_page=True)
        for path in PAGES:
            look(page, stack.url + path, "page" + (path.replace("/", "-") if path != "/"
                                                    else "-incidents"), out)
    finally:
        context.close()


def test_a_viewer_reads_but_cannot_silence_and_an_approver_silences_in_portuguese(
        stack, browser, tmp_path):
    out = shots_dir(tmp_path)
    context = browser.new_context(viewport=PHONE, locale="pt-BR",
                                  extra_http_headers={"Accept-Language": "pt-BR,pt;q=0.9"})
    page = context.new_page()
    try:
        login(page, stack.url, "approver", "/silences")
        assert page.locator("h1").inner_text() == "Silêncios"
        page.fill("#matchers", "host=node02")
        page.fill("#duration", "2h")
        page.fill("#comment", "troca de disco")
        with page.expect_navigation():
            page.click("#create-silence")
        assert "criado" in page.locator("#silence-done").inner_text()
        row = page.locator("#silences tr[data-state=active]")
        assert row.count() == 1 and "node02" in row.inner_text()
        assert "approver" in row.inner_text()  # the logged-in user is the author
        assert "em 2 h" in row.inner_text() or "em 2 h" in row.locator("time").nth(1).inner_text()
        assert wider_than_the_screen(page) is None, wider_than_the_screen(page)
        page.screenshot(path=str(out / "silences-pt-390.png"), full_page=True)
        with page.expect_navigation():
            row.locator("button.expire").click()
        assert page.locator("#silences tr[data-state=expired]").count() == 1
        assert "expirado" in page.locator("#silence-done").inner_text()

        # Every page an approver sees, in Portuguese (longer words), fits the phone too.
        for path in PAGES[:-1]:
            look(page, stack.url + path, "pt" + (path.replace("/", "-") if path != "/"
                                                  else "-incidents"), out)
            assert page.locator("html").get_attribute("lang") == "pt-BR"
        page.set_viewport_size(PHONE)
        page.goto(stack.url + "/silences")

        # The switch back to English is remembered (a cookie) over the browser's language.
        with page.expect_navigation():
            page.click("#languages a[hreflang=en]")
        assert page.locator("h1").inner_text() == "Silences"
        page.goto(stack.url + "/")
        assert page.locator("nav").inner_text().split()[0] == "Incidents"

        # A viewer sees the silences and the form refuses them.
        page.context.clear_cookies()
        login(page, stack.url, "viewer", "/silences")
        page.fill("#matchers", "host=node03")
        with page.expect_navigation() as nav:
            page.click("#create-silence")
        assert nav.value.status == 403
        page.goto(stack.url + "/silences")
        assert page.locator("#silences tr[data-state=active]").count() == 0
    finally:
        context.close()


def _incident_ids(stack) -> list[str]:
    from gateway.adapters.store.incidents import IncidentStore
    from gateway.config import settings_from_dict
    from gateway.runtime import Runtime
    rt = Runtime.from_settings(settings_from_dict(stack.config, env={}))
    return [i.id for i in IncidentStore(rt).list(open_only=False, limit=10)
            if i.primary.resource == "HOST"]
