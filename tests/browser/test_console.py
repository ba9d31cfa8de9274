"""The console, read by a person in a real browser: incidents, an incident's objects and timeline."""

import time

import pytest

from gateway.flows.incident import IncidentFlow
from gateway.domain.events import Event

pytestmark = pytest.mark.browser


def _host_error(host_id: int, name: str, t: float) -> Event:
    return Event(event_id=f"h{host_id}-{t}", source="test", resource="HOST", object_id=str(host_id),
                 name=name, status="firing", condition="HOST/ERROR", occurred_at=t, state=3,
                 labels={"resource": "HOST", "name": name, "host": name, "host_id": str(host_id),
                         "state": "ERROR"})


def _vm_unknown(vm_id: int, name: str, host: str, host_id: int, t: float) -> Event:
    return Event(event_id=f"v{vm_id}-{t}", source="test", resource="VM", object_id=str(vm_id),
                 name=name, status="firing", condition="VM/ACTIVE/UNKNOWN", occurred_at=t, state=3,
                 lcm_state=16, labels={"resource": "VM", "name": name, "host": host,
                                       "host_id": str(host_id), "state": "ACTIVE/UNKNOWN"})


def test_a_failed_host_is_one_incident_with_its_vms_and_timeline(live_gateway, page, tmp_path):
    gw = live_gateway()
    gw.login(page)
    store = IncidentFlow(gw.runtime, send=lambda *a, **k: None)
    now = time.time()
    store.apply_event(_host_error(7, "node07", now), now=now)
    for vm in range(3):
        store.apply_event(_vm_unknown(100 + vm, f"web-{vm}", "node07", 7, now + 1), now=now + 1)

    page.goto(gw.url + "/")
    rows = page.locator("#open-incidents tr")
    assert rows.count() == 2  # header + one incident for the host and its three VMs
    link = page.get_by_role("link", name="Host node07 is in ERROR — 3 VMs affected")
    link.click()
    page.wait_for_selector("#timeline")
    assert page.locator("#title").inner_text() == "Host node07 is in ERROR — 3 VMs affected"
    assert page.locator("#objects tr").count() == 1 + 4
    assert "web-2" in page.locator("#objects").inner_text()
    assert page.locator("#timeline tr").count() >= 2
    page.screenshot(path=str(tmp_path / "incident.png"), full_page=True)


def test_unknown_incident_is_a_clear_404(live_gateway, page):
    gw = live_gateway()
    gw.login(page)
    response = page.goto(gw.url + "/incidents/nope")
    assert response.status == 404
    assert "no incident 'nope'" in page.content()


def test_raft_view_before_the_first_poll_says_so(live_gateway, page):
    gw = live_gateway()
    gw.login(page)
    page.goto(gw.url + "/raft")
    assert "has not polled yet" in page.inner_text("main")


def test_the_event_log_page_shows_what_came_in_and_leads_to_its_incident(live_gateway, page):
    from gateway.adapters.store.events import EventStore
    from gateway.domain.hook_events import content_digest

    gw = live_gateway()
    gw.login(page)
    incidents = IncidentFlow(gw.runtime, send=lambda *a, **k: None)
    log = EventStore.of(gw.runtime)
    now = time.time()
    for e in (_host_error(7, "node07", now), _vm_unknown(100, "web-0", "node07", 7, now + 1)):
        assert log.record(e, content_digest(e)).accepted  # as ingest records it …
        incidents.apply_event(e, now=e.occurred_at)  # … and as the worker applies it

    page.goto(gw.url + "/")
    page.get_by_role("link", name="Events").click()
    page.wait_for_selector("#events")
    rows = page.locator("#events tr")
    assert rows.count() == 3  # header + the two events, newest first
    assert "VM web-0 (#100)" in rows.nth(1).inner_text()
    assert "VM/ACTIVE/UNKNOWN" in rows.nth(1).inner_text()
    assert "HOST node07 (#7)" in rows.nth(2).inner_text()
    host_incident = incidents.store.open_for("host:7")
    rows.nth(1).get_by_role("link", name=host_incident.id).click()  # the VM joined its host's
    page.wait_for_selector("#timeline")
    assert page.locator("#title").inner_text() == "Host node07 is in ERROR — 1 VM affected"


def test_the_event_log_page_before_any_event_says_so(live_gateway, page):
    gw = live_gateway()
    gw.login(page)
    page.goto(gw.url + "/events")
    assert "no events recorded yet" in page.inner_text("#events")
