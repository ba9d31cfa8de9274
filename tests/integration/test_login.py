"""The login page and the session: throttled failures (Redis, per address and name), no open
redirect, cookie flags, security headers on every kind of response, sessions that end when the
user's password changes or the user is removed, and logging out."""

from __future__ import annotations

import logging
import time

import pytest

from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.domain.approvals import Claims, sign
from gateway.runtime import Runtime
from tests.support.auth import PASSWORDS, auth_section, csrf_of, login


@pytest.fixture
def config(redis_url, key_prefix):
    return {"redis_url": redis_url, "key_prefix": key_prefix, "secret_key": "login-test",
            "auth": auth_section(login_attempts=3, login_window="10m")}


def app_of(config, **auth):
    return create_app(settings_from_dict({**config, "auth": {**config["auth"], **auth}}, env={}))


def attempt(client, name, password, next_="/", addr="10.0.0.1"):
    csrf = csrf_of(client.get("/login").data)
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf,
                                       "next": next_}, environ_base={"REMOTE_ADDR": addr})


def test_failed_logins_are_throttled_per_address_and_name(config, key_prefix):
    app = app_of(config)
    client = app.test_client()
    for _ in range(3):
        r = attempt(client, "approver", "wrong")
        assert r.status_code == 401 and b"Wrong name or password" in r.data
    blocked = attempt(client, "approver", PASSWORDS["approver"])  # right, but too late
    assert blocked.status_code == 429 and 590 <= int(blocked.headers["Retry-After"]) <= 600
    assert b"try again in 10 min" in blocked.data
    assert attempt(client, "approver", PASSWORDS["approver"], addr="10.0.0.2").status_code == 303
    assert attempt(client, "viewer", PASSWORDS["viewer"]).status_code == 303
    # The count lives in Redis (every gateway process sees it), keyed by a hash: no name there.
    redis = Runtime.from_settings(app.extensions["oneha"].settings).redis
    keys = [k.decode() for k in redis.scan_iter(f"{key_prefix}auth:fail:*")]
    assert len(keys) == 1 and "approver" not in keys[0] and "10.0.0.1" not in keys[0]


def test_an_unknown_name_is_answered_like_a_wrong_password(config):
    client = app_of(config).test_client()
    r = attempt(client, "nobody", "whatever")
    assert r.status_code == 401 and b"Wrong name or password" in r.data


def test_the_login_form_needs_its_csrf_token(config):
    client = app_of(config).test_client()
    client.get("/login")
    r = client.post("/login", data={"name": "admin", "password": PASSWORDS["admin"]})
    assert r.status_code == 403 and client.get("/v1/incidents").status_code == 401


@pytest.mark.parametrize("target,landing", [
    ("/incidents/x?a=1", "/incidents/x?a=1"), ("//evil.example/x", "/"),
    ("https://evil.example/", "/"), ("/\\evil.example", "/"), ("/\t/evil.example", "/"),
    ("/\n/evil.example", "/"), ("", "/")])
def test_after_login_only_a_path_of_this_site_is_followed(config, target, landing):
    r = attempt(app_of(config).test_client(), "viewer", PASSWORDS["viewer"], next_=target)
    assert r.status_code == 303 and r.location == landing


def test_a_page_asked_for_logged_out_comes_back_after_login(config):
    client = app_of(config).test_client()
    r = client.get("/silences?all=1")
    assert r.status_code == 303 and r.location == "/login?next=/silences%3Fall%3D1"
    r = attempt(client, "viewer", PASSWORDS["viewer"], next_="/silences?all=1")
    assert r.location == "/silences?all=1"


@pytest.mark.parametrize("public_url,secure_cookies,secure", [
    ("http://127.0.0.1:8080", None, False), ("https://oneha.example", None, True),
    ("http://127.0.0.1:8080", True, True), ("https://oneha.example", False, False)])
def test_the_session_cookie_flags(config, public_url, secure_cookies, secure):
    app = create_app(settings_from_dict(
        {**config, "public_url": public_url,
         "auth": {**config["auth"], "secure_cookies": secure_cookies}}, env={}))
    r = attempt(app.test_client(), "viewer", PASSWORDS["viewer"])
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("oneha_session=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and ("Secure" in cookie) == secure


@pytest.mark.parametrize("path,headers", [
    ("/login", {}), ("/", {}), ("/v1/incidents", {}), ("/healthz", {}), ("/nope", {}),
    ("/approvals/not-a-token", {})])
def test_security_headers_on_every_response(config, path, headers):
    r = app_of(config).test_client().get(path, headers=headers)
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert r.headers["X-Frame-Options"] == "DENY"


def test_what_a_principal_reads_is_not_cached(config):
    client = app_of(config).test_client()
    assert client.get("/v1/incidents", headers={"Authorization": "Bearer test-token-viewer"}
                      ).headers["Cache-Control"] == "no-store"
    login(client, "viewer")
    assert client.get("/").headers["Cache-Control"] == "no-store"
    assert "Cache-Control" not in client.get("/healthz").headers


def test_an_inline_style_is_allowed_by_this_responses_nonce_only(config):
    client = app_of(config).test_client()
    first, second = client.get("/login"), client.get("/login")
    nonces = []
    for r in (first, second):
        nonce = r.headers["Content-Security-Policy"].split("'nonce-", 1)[1].split("'", 1)[0]
        assert f'<style nonce="{nonce}">'.encode() in r.data
        nonces.append(nonce)
    assert nonces[0] != nonces[1] and len(nonces[0]) >= 16


def test_the_approval_and_login_pages_send_no_referrer(config):
    client = app_of(config).test_client()
    assert client.get("/approvals/not-a-token").headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/login?next=/approvals/abc").headers["Referrer-Policy"] == "no-referrer"


def test_a_removed_user_or_a_changed_password_ends_the_session(config):
    client = app_of(config).test_client()
    login(client, "approver")
    assert client.get("/v1/incidents").status_code == 200
    cookie = client.get_cookie("oneha_session").value
    for auth in ({"users": [u for u in config["auth"]["users"] if u["name"] != "approver"]},
                 {"users": [{**u, "password_hash": "pbkdf2:sha256:1000$a$b"}
                            if u["name"] == "approver" else u for u in config["auth"]["users"]]}):
        other = app_of(config, **auth).test_client()
        other.set_cookie("oneha_session", cookie)
        assert other.get("/v1/incidents").status_code == 401


def test_a_login_ends_after_the_session_lifetime_however_often_it_is_used(config):
    client = app_of(config).test_client()
    login(client, "viewer")
    assert client.get("/v1/incidents").status_code == 200
    with client.session_transaction() as s:
        s["at"] -= 12 * 3600 - 60  # logged in 11 h 59 min ago
    assert client.get("/v1/incidents").status_code == 200
    with client.session_transaction() as s:
        s["at"] -= 120  # 12 h 01 min ago
    assert client.get("/v1/incidents").status_code == 401


def test_logout_ends_the_session(config):
    client = app_of(config).test_client()
    csrf = login(client, "viewer")
    assert client.post("/logout").status_code == 403  # no CSRF token: someone else's page
    assert client.get("/v1/incidents").status_code == 200
    r = client.post("/logout", data={"csrf_token": csrf})
    assert r.status_code == 303 and r.location == "/login"
    assert client.get("/v1/incidents").status_code == 401


def test_a_login_with_redis_away_is_a_503_not_a_500(config, own_redis):
    app = create_app(settings_from_dict({**config, "redis_url": own_redis.url}, env={}))
    client = app.test_client()
    csrf = csrf_of(client.get("/login").data)
    own_redis.stop()
    r = client.post("/login", data={"name": "admin", "password": "x", "csrf_token": csrf})
    assert r.status_code == 503


def test_no_log_line_names_the_approval_token(config, own_redis, caplog):
    app = create_app(settings_from_dict({**config, "redis_url": own_redis.url}, env={}))
    own_redis.stop()
    token = sign("login-test", Claims("ap1", "plan-1", "inc-1", time.time() + 3600))
    signature = token.rsplit(".", 1)[1]
    with caplog.at_level(logging.DEBUG):
        assert app.test_client().get(f"/approvals/{token}").status_code == 503
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "request_unavailable" in logged and "/approvals/<token>" in logged
    assert token not in logged and signature not in logged


def test_metrics_are_open_unless_the_site_says_otherwise(config):
    assert app_of(config).test_client().get("/metrics").status_code == 200
    closed = app_of(config, public_metrics=False).test_client()
    assert closed.get("/metrics").status_code == 401
    assert closed.get("/metrics", headers={"Authorization": "Bearer test-token-viewer"}
                      ).status_code == 200
    assert closed.get("/healthz").status_code == 200 and closed.get("/readyz").status_code == 200


def test_someone_not_logged_in_reads_the_login_page_in_the_language_they_pick(config):
    client = app_of(config).test_client()
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/language/pt-BR?next=/login"' in page and "Log in to oneha" in page
    switched = client.get("/language/pt-BR?next=/login")
    assert switched.status_code == 302 and switched.headers["Location"] == "/login"
    assert "Entrar no oneha" in client.get("/login").get_data(as_text=True)
    # Only the switch is open: a console page still needs a login.
    assert client.get("/silences").status_code in (302, 303)
