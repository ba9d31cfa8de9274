"""The login page and the approval page at 1280 and 390 px in Chromium: nothing scrolls
sideways, and on a phone Approve and Deny are on the first screen. Screenshots are saved."""

import pytest

from tests.browser.test_approval_page import CLOUD, awaiting_approval
from simulator import Simulator

pytestmark = pytest.mark.browser

SIZES = {"1280": {"width": 1280, "height": 900}, "390": {"width": 390, "height": 844}}


@pytest.fixture
def sim():
    with Simulator(CLOUD) as s:
        yield s


WIDE = """[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right >
          window.innerWidth + 0.5).slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className
          + ' ' + Math.round(e.getBoundingClientRect().right))"""


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_login_and_approval_pages_fit_and_put_the_decision_first(sim, key_prefix, live_gateway,
                                                                 browser, tmp_path):
    d, pid, link, gw = awaiting_approval(sim, key_prefix, live_gateway)
    for label, size in SIZES.items():
        context = browser.new_context(viewport=size)
        page = context.new_page()
        refused = []  # what the browser's CSP blocked (it says so on the console)
        page.on("console", lambda m: refused.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.goto(link)
        page.screenshot(path=str(tmp_path / f"approval-logged-out-{label}.png"), full_page=True)
        assert fits(page), (f"approval page (logged out) wider than {label} px", page.evaluate(WIDE))
        assert page.locator("#login-to-decide").is_visible()
        page.screenshot(path=str(tmp_path / f"approval-logged-out-{label}.png"), full_page=True)
        page.click("#login-to-decide")
        page.wait_for_selector("#login")
        assert fits(page), f"login page wider than {label} px"
        page.fill("#name", "approver")
        page.fill("#password", "nope")
        page.click("#login")
        page.wait_for_selector("#login-error")
        page.screenshot(path=str(tmp_path / f"login-error-{label}.png"), full_page=True)
        page.fill("#password", "approver-password")
        with page.expect_navigation():
            page.click("#login")
        assert page.url == link and fits(page), f"approval page wider than {label} px"
        for button in ("#approve", "#deny"):
            box = page.locator(button).bounding_box()
            assert box and box["y"] + box["height"] <= size["height"], f"{button} below the fold"
        page.screenshot(path=str(tmp_path / f"approval-{label}.png"), full_page=True)
        navy = page.evaluate("getComputedStyle(document.querySelector('#approve')).backgroundColor")
        assert navy == "rgb(31, 58, 95)", "the page's own style did not apply"
        assert refused == []
        context.close()
    assert d.store.plan_state(pid)["status"] == "awaiting_approval"  # looked, decided nothing


def test_a_portuguese_browser_reads_the_approval_and_login_pages_in_portuguese(
        sim, key_prefix, live_gateway, browser, tmp_path):
    d, pid, link, gw = awaiting_approval(sim, key_prefix, live_gateway)
    context = browser.new_context(viewport=SIZES["390"], locale="pt-BR")
    page = context.new_page()
    page.goto(link)
    assert page.locator("html").get_attribute("lang") == "pt-BR"
    assert page.locator("#login-to-decide").inner_text() == "Entrar para aprovar ou negar"
    assert "Este link vale uma vez e expira" in page.locator("#decide").inner_text()
    page.click("#login-to-decide")
    page.wait_for_selector("#login")
    assert page.title() == "Entrar no oneha"
    page.fill("#name", "approver")
    page.fill("#password", "approver-password")
    with page.expect_navigation():
        page.click("#login")
    assert page.locator("#approve").inner_text() == "Aprovar"
    assert page.locator("#plan-status").inner_text() == "aguardando aprovação"
    assert fits(page)
    page.screenshot(path=str(tmp_path / "approval-pt-BR-390.png"), full_page=True)
    with page.expect_navigation():
        page.click("#approve")
    assert "Registrado: aprovado por approver." in page.locator("#result").inner_text()
    assert page.locator("#plan-status").get_attribute("data-status") == "executing"
    page.screenshot(path=str(tmp_path / "approved-pt-BR-390.png"), full_page=True)
    context.close()
    assert d.store.plan_state(pid)["approved_by"] == "approver"
