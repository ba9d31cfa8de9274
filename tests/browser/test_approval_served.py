"""The approval link against the real `oneha serve` (gunicorn), not a test server: pressing
Approve answers 200 with the decision recorded (it once answered 500: the plan's status string
became the HTTP status line, which werkzeug's test server let pass and gunicorn refused)."""

import pytest

from simulator import CloudSpec, HostSpec, Simulator
from tests.support.auth import auth_section, browser_login
from tests.support.procs import oneha_serve
from tests.support.remediation import Driver, remediation_config, shared_vms
from tests.support.worker import write_config

pytestmark = pytest.mark.browser

CLOUD = CloudSpec(hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in (1, 2, 3)],
                  vms=shared_vms(2), frontends=1, monitoring_interval=0.2)


@pytest.fixture
def sim():
    with Simulator(CLOUD) as s:
        yield s


def test_approve_on_the_served_gateway_answers_200(sim, key_prefix, page, tmp_path):
    config = {**remediation_config(key_prefix, sim, mode="approval"), "auth": auth_section()}
    d = Driver(config)
    sim.crash_host(0)
    sim.wait_for(lambda: all(v.is_unknown for v in d.one.vms()), timeout=10)
    iid = d.event("HOST", 0).decision.incident_id
    d.run_until_idle(timeout=3)
    (pid,) = d.store.plan_ids(iid)
    (request,) = [p for p in d.pages if p["transition"] == "approval_requested"]
    path = request["approval_url"].split("oneha.test", 1)[1]

    with oneha_serve(write_config(config, tmp_path)) as port:
        url = f"http://127.0.0.1:{port}"
        assert page.goto(url + path).status == 200
        browser_login(page, url, "approver", then=path)
        with page.expect_navigation() as nav:
            page.click("#approve")
        assert nav.value.status == 200
        assert "approved by approver" in page.locator("#result").inner_text()
        assert page.locator("#plan-status").inner_text() == "executing"
        page.screenshot(path=str(tmp_path / "approved-served.png"), full_page=True)
    assert d.store.plan_state(pid)["status"] == "executing"
