"""A real Chromium (Debian's, driven by Playwright) against a gateway served on 127.0.0.1."""

import threading

import pytest
from werkzeug.serving import make_server

from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.runtime import Runtime
from tests.support.auth import auth_section, browser_login

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    yield pg
    context.close()


class LiveGateway:
    def __init__(self, settings):
        self.settings = settings
        self.runtime = Runtime.from_settings(settings)
        self.app = create_app(settings, self.runtime)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def login(self, page, role: str = "viewer", then: str = "/"):
        """Log `page` in through the login form as the user `role` (tests/support/auth.py)."""
        browser_login(page, self.url, role, then)
        return page

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture
def live_gateway(redis_url, key_prefix):
    """`live_gateway(**settings)` serves create_app(settings) on a free port of 127.0.0.1, with
    a user and a bearer token per role (tests/support/auth.py); `gw.login(page, role)`."""
    started = []

    def start(**overrides):
        data = {"redis_url": redis_url, "key_prefix": key_prefix, "secret_key": "browser-test",
                "auth": auth_section(), **overrides}
        gw = LiveGateway(settings_from_dict(data, env={})).start()
        data["public_url"] = gw.url
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
