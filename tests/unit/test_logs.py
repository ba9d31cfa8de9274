"""gateway/logs.py: one structured style for stdlib and structlog call sites, JSON or text, with
ids as fields and no secret in any line."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from gateway import logs
from gateway.config import settings_from_dict

KEY = "fe1-hmac-key-4f9c2b"
SETTINGS = settings_from_dict({
    "secret_key": "approval-signing-secret-77",
    "opennebula": {"session": "oneadmin:cloud-pass-123"},
    "ingest": {"frontends": {"fe1": {"keys": [KEY]}}},
    "api": {"tokens": ["api-token-abcdef"]},
    "receivers": [{"name": "ops", "urls": ["json://hooks.example.org/T0KEN-in-path-999"]}],
    "redis_url": "redis://:redis-pass-456@redis:6379/0"}, env={})


@pytest.fixture
def captured(monkeypatch):
    monkeypatch.setenv(logs.ENV_FORMAT, "text")  # configure() sets it for child processes
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield lambda fmt: (logs.configure(fmt, "INFO", SETTINGS, stream=stream), stream)[1]
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])
    structlog.reset_defaults()


def lines(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_stdlib_call_sites_become_events_with_id_fields(captured):
    stream = captured("json")
    logging.getLogger("tasks.process").info(
        "event_processed event=%s object=%s action=%s incident=%s reason=%s",
        "ab12" * 8, "host:7", "created", "host-7-ab12ab12", "new host incident")
    structlog.get_logger("oneha.remediation").info("plan_created", plan="host-7-ab12ab12.1",
                                                   incident="host-7-ab12ab12", status="grace")
    first, second = lines(stream)
    assert first["event"] == "event_processed" and first["event_id"] == "ab12" * 8
    assert first["incident_id"] == "host-7-ab12ab12" and first["reason"] == "new host incident"
    assert first["level"] == "info" and first["logger"] == "tasks.process" and first["timestamp"]
    assert second["event"] == "plan_created" and second["plan_id"] == "host-7-ab12ab12.1"
    assert second["incident_id"] == "host-7-ab12ab12"


def test_extra_fields_are_fields_and_an_event_id_never_replaces_the_event(captured):
    stream = captured("json")
    logging.getLogger("gateway.flows.applier").warning(
        "event_applied", extra={"event": "e" * 32, "incident": "vm-42-abc", "action": "created"})
    [line] = lines(stream)
    assert (line["event"], line["event_id"], line["incident_id"], line["action"]) == (
        "event_applied", "e" * 32, "vm-42-abc", "created")


def test_a_plain_message_stays_whole(captured):
    stream = captured("json")
    logging.getLogger("x").warning("Connected to redis://127.0.0.1:6379/0")
    assert lines(stream)[0]["event"] == "Connected to redis://127.0.0.1:6379/0"


def test_no_secret_reaches_a_line(captured):
    stream = captured("json")
    log = logging.getLogger("gateway.web.ingest")
    log.warning("bad_signature frontend=fe1 expected=%s", KEY)
    log.error("send_failed url=json://hooks.example.org/T0KEN-in-path-999 reason=refused")
    log.error("one_call_failed session=oneadmin:cloud-pass-123 detail=auth with cloud-pass-123")
    log.info("redis_reconnect url=redis://:redis-pass-456@redis:6379/0")
    log.info("request auth=Bearer api-token-abcdef sig=sha256=%s", "ab" * 32)
    structlog.get_logger("x").info("approval", token="anything-at-all", secret_key="s3cr3t-val")
    try:
        raise RuntimeError("login refused for oneadmin:cloud-pass-123")
    except RuntimeError:
        log.exception("one_error")
    text = stream.getvalue()
    for secret in (KEY, "T0KEN-in-path-999", "cloud-pass-123", "redis-pass-456", "api-token-abcdef",
                   "ab" * 32, "anything-at-all", "s3cr3t-val"):
        assert secret not in text, secret
    assert text.count(logs.MASK) >= 8 and len(lines(stream)) == 7


def test_text_format_for_people(captured):
    stream = captured("text")
    logging.getLogger("tasks.process").info("event_processed event=%s incident=%s", "e1", "i1")
    structlog.get_logger("oneha.remediation").info("plan_created", plan="p1")
    first, second = stream.getvalue().strip().splitlines()
    assert "[info" in first and "event_processed event=e1 incident=i1" in first  # as written
    assert "plan_created" in second and "plan_id=p1" in second
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)


def test_format_comes_from_flag_or_environment(monkeypatch):
    monkeypatch.setenv(logs.ENV_FORMAT, "json")
    assert logs.resolve_format(None) == "json" and logs.resolve_format("text") == "text"
    with pytest.raises(ValueError, match="yaml"):
        logs.resolve_format("yaml")
