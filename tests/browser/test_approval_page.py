"""An approver in a real Chromium: the approval link shows the plan and the live state to anyone
with the link; deciding needs a login as an approver (a viewer cannot, a logged-out person is
sent to the login page and back); approve works once, is recorded with the user's name, and a
reused or forged link is refused. A site may allow link-only approval: the name typed is then
recorded as unverified."""

import pytest

from simulator import CloudSpec, HostSpec, Simulator
from tests.support.auth import auth_section
from tests.support.remediation import Driver, remediation_config, shared_vms, vm_actions

pytestmark = pytest.mark.browser

CLOUD = CloudSpec(hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in (1, 2, 3)],
                  vms=shared_vms(3), frontends=1, monitoring_interval=0.2)


@pytest.fixture
def sim():
    with Simulator(CLOUD) as s:
        yield s


def awaiting_approval(sim, key_prefix, live_gateway, **auth):
    """node 0 crashed, its plan made and waiting: (driver, plan id, the approval link served by a
    live gateway, the gateway)."""
    config = remediation_config(key_prefix, sim, mode="approval")
    gw = live_gateway(secret_key=config["secret_key"], opennebula=config["opennebula"],
                      remediation=config["remediation"], auth=auth_section(**auth))
    d = Driver(config)
    sim.crash_host(0)
    sim.wait_for(lambda: all(v.is_unknown for v in d.one.vms()), timeout=10)
    iid = d.event("HOST", 0).decision.incident_id
    d.run_until_idle(timeout=3)
    (pid,) = d.store.plan_ids(iid)
    (request,) = [p for p in d.pages if p["transition"] == "approval_requested"]
    return d, pid, gw.url + request["approval_url"].split("oneha.test", 1)[1], gw


def path_of(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_approver_sees_plan_and_live_state_and_approves_once(sim, key_prefix, live_gateway,
                                                            page, tmp_path):
    d, pid, link, gw = awaiting_approval(sim, key_prefix, live_gateway)

    gw.login(page, "approver", then=path_of(link))
    assert page.url == link
    assert page.locator("#deciding-as").inner_text() == "approver"
    assert page.locator("#plan-id").inner_text() == pid
    assert page.locator("#plan-status").inner_text() == "awaiting_approval"
    rows = page.locator("#steps tr")
    assert rows.count() == 1 + 3
    assert page.locator("#steps td.live").all_inner_texts() == ["ACTIVE/UNKNOWN"] * 3
    assert "resched" in page.locator("#steps").inner_text()
    page.screenshot(path=str(tmp_path / "approval.png"), full_page=True)

    page.click("#approve")
    page.wait_for_selector("#result")
    assert "approved by approver" in page.locator("#result").inner_text()
    state = d.store.plan_state(pid)
    assert (state["status"], state["approved_by"]) == ("executing", "approver")
    audit = [r for r in d.store.audit_log(50, plan_id=pid) if r["what"] == "plan_approved"]
    assert audit[0]["actor"] == "approver" and audit[0]["data"]["via"].startswith("web from")

    d.run_plan_once(pid)  # the workers' part, here in-process
    assert sorted(vm_actions(sim, "resched")) == [0, 1, 2]

    response = page.goto(link)  # the same link again
    assert response.status == 409
    assert "already used" in page.locator("#refused").inner_text()
    assert "approver" in page.locator("#refused").inner_text()

    forged = link[:-3] + ("abc" if not link.endswith("abc") else "xyz")
    response = page.goto(forged)
    assert response.status == 403 and "not genuine" in page.locator("#refused").inner_text()


def test_a_viewer_sees_the_plan_but_cannot_decide(sim, key_prefix, live_gateway, page):
    d, pid, link, gw = awaiting_approval(sim, key_prefix, live_gateway)
    gw.login(page, "viewer", then=path_of(link))
    assert "deciding needs the approver role" in page.locator("#cannot-decide").inner_text()
    assert page.locator("#approve").count() == 0
    # The form posted anyway (with the session's CSRF token): refused by the role, not by luck.
    csrf = page.evaluate("fetch('/login').then(r => r.text())")
    token = csrf.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = page.request.post(link, form={"decision": "approve", "csrf_token": token})
    assert answer.status == 403 and "approver role" in answer.text()
    assert d.store.plan_state(pid)["status"] == "awaiting_approval"
    assert vm_actions(sim, "resched") == []


def test_a_logged_out_person_is_sent_to_the_login_page_and_back(sim, key_prefix, live_gateway,
                                                                page, tmp_path):
    d, pid, link, gw = awaiting_approval(sim, key_prefix, live_gateway)
    page.goto(link)
    assert page.locator("#plan-id").inner_text() == pid  # the link alone shows the plan
    assert page.locator("#approve").count() == 0
    page.click("#login-to-decide")
    page.wait_for_selector("#login")
    assert page.url.startswith(gw.url + "/login?next=/approvals/")
    page.fill("#name", "approver")
    page.fill("#password", "wrong")
    page.click("#login")
    assert "Wrong name or password" in page.locator("#login-error").inner_text()
    page.fill("#password", "approver-password")
    with page.expect_navigation():
        page.click("#login")
    assert page.url == link
    page.click("#approve")
    page.wait_for_selector("#result")
    assert d.store.plan_state(pid)["approved_by"] == "approver"


def test_a_cross_site_post_is_refused(sim, key_prefix, live_gateway, page):
    d, pid, link, gw = awaiting_approval(sim, key_prefix, live_gateway)
    gw.login(page, "approver")
    # A page elsewhere auto-submitting a form to the approval link, with the approver's session
    # cookie (a blank page counts as same-site for SameSite=Lax) but neither CSRF token.
    page.set_content(f'<form id="f" method="post" action="{link}">'
                     '<input name="decision" value="approve"></form>')
    with page.expect_navigation() as nav:
        page.evaluate("document.getElementById('f').submit()")
    assert nav.value.status == 403
    assert page.locator("#error").get_attribute("data-code") == "csrf"
    assert d.store.plan_state(pid)["status"] == "awaiting_approval"
    assert vm_actions(sim, "resched") == []


def test_link_only_approval_records_the_typed_name_as_unverified(sim, key_prefix, live_gateway,
                                                                 page):
    d, pid, link, gw = awaiting_approval(sim, key_prefix, live_gateway, link_approval=True)
    page.goto(link)
    page.fill("#approver", "Alice Admin")
    page.click("#approve")
    page.wait_for_selector("#result")
    assert d.store.plan_state(pid)["approved_by"] == "Alice Admin (unverified)"


def test_link_only_approval_still_refuses_a_cross_site_post(sim, key_prefix, live_gateway, page):
    d, pid, link, gw = awaiting_approval(sim, key_prefix, live_gateway, link_approval=True)
    page.set_content(f'<form id="f" method="post" action="{link}">'
                     '<input name="decision" value="approve"><input name="approver" value="x">'
                     '</form>')
    with page.expect_navigation():
        page.evaluate("document.getElementById('f').submit()")
    assert "CSRF" in page.locator("#refused").inner_text()
    assert d.store.plan_state(pid)["status"] == "awaiting_approval"
    assert vm_actions(sim, "resched") == []
