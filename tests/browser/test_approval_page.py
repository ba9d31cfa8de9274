"""An approver in a real Chromium: the approval link shows the plan and the live state; approve
works once, is recorded with the approver's name, and a reused or forged link is refused."""

import pytest

from simulator import CloudSpec, HostSpec, Simulator
from tests.support.remediation import (Driver, remediation_config,
                                                     shared_vms, vm_actions)

pytestmark = pytest.mark.browser

CLOUD = CloudSpec(hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in (1, 2, 3)],
                  vms=shared_vms(3), frontends=1, monitoring_interval=0.2)


@pytest.fixture
def sim():
    with Simulator(CLOUD) as s:
        yield s


def awaiting_approval(sim, key_prefix, live_gateway):
    """node 0 crashed, its plan made and waiting: (driver, plan id, the approval link served by a
    live gateway)."""
    config = remediation_config(key_prefix, sim, mode="approval")
    gw = live_gateway(secret_key=config["secret_key"], opennebula=config["opennebula"],
                      remediation=config["remediation"])
    d = Driver(config)
    sim.crash_host(0)
    sim.wait_for(lambda: all(v.is_unknown for v in d.one.vms()), timeout=10)
    iid = d.event("HOST", 0).decision.incident_id
    d.run_until_idle(timeout=3)
    (pid,) = d.store.plan_ids(iid)
    (request,) = [p for p in d.pages if p["transition"] == "approval_requested"]
    return d, pid, gw.url + request["approval_url"].split("oneha.test", 1)[1]


def test_approver_sees_plan_and_live_state_and_approves_once(sim, key_prefix, live_gateway,
                                                            page, tmp_path):
    d, pid, link = awaiting_approval(sim, key_prefix, live_gateway)

    page.goto(link)
    assert page.locator("#plan-id").inner_text() == pid
    assert page.locator("#plan-status").inner_text() == "awaiting_approval"
    rows = page.locator("#steps tr")
    assert rows.count() == 1 + 3
    assert page.locator("#steps td.live").all_inner_texts() == ["ACTIVE/UNKNOWN"] * 3
    assert "resched" in page.locator("#steps").inner_text()
    page.screenshot(path=str(tmp_path / "approval.png"), full_page=True)

    page.fill("#approver", "Alice Admin")
    page.click("#approve")
    page.wait_for_selector("#result")
    assert "approved by Alice Admin" in page.locator("#result").inner_text()
    state = d.store.plan_state(pid)
    assert (state["status"], state["approved_by"]) == ("executing", "Alice Admin")
    audit = [r for r in d.store.audit_log(50, plan_id=pid) if r["what"] == "plan_approved"]
    assert audit[0]["actor"] == "Alice Admin" and audit[0]["data"]["via"].startswith("web from")

    d.run_plan_once(pid)  # the workers' part, here in-process
    assert sorted(vm_actions(sim, "resched")) == [0, 1, 2]

    response = page.goto(link)  # the same link again
    assert response.status == 409
    assert "already used" in page.locator("#refused").inner_text()
    assert "Alice Admin" in page.locator("#refused").inner_text()

    forged = link[:-3] + ("abc" if not link.endswith("abc") else "xyz")
    response = page.goto(forged)
    assert response.status == 403 and "not genuine" in page.locator("#refused").inner_text()


def test_a_cross_site_post_without_the_csrf_token_is_refused(sim, key_prefix, live_gateway, page):
    d, pid, link = awaiting_approval(sim, key_prefix, live_gateway)
    # A page elsewhere auto-submitting a form to the approval link (no cookie, no token).
    page.set_content(f'<form id="f" method="post" action="{link}">'
                     '<input name="decision" value="approve"><input name="approver" value="x">'
                     '</form>')
    with page.expect_navigation():
        page.evaluate("document.getElementById('f').submit()")
    assert "CSRF" in page.locator("#refused").inner_text()
    assert d.store.plan_state(pid)["status"] == "awaiting_approval"
    assert vm_actions(sim, "resched") == []
