"""One log style for every oneha process: structlog, rendered as JSON (one object per line, for a
log shipper) or as text (for a person at a terminal), chosen by `--log-format` / ONEHA_LOG_FORMAT.

The code logs two ways and both end here: `structlog.get_logger()` call sites (remediation) and
the standard `logging.getLogger(__name__)` ones, which already write `event_name key=value ...`;
structlog's `ProcessorFormatter` renders both, and for the latter `split_key_values` turns the
message into the event and its fields (in JSON; text keeps the message as written). So
`incident`, `plan` and `event` become `incident_id`, `plan_id` and `event_id` fields a log
shipper can filter on, without rewriting any call site.
Celery's and gunicorn's own loggers propagate to the same root handler (see `configure`).

Nothing secret reaches a line: fields named like a secret are replaced, URLs lose their
user:password, bearer tokens and signatures are masked, and every secret value of the loaded
configuration (keys, session, tokens, receiver URLs) is replaced wherever it appears.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any, Iterable

import structlog

FORMATS = ("text", "json")
ENV_FORMAT = "ONEHA_LOG_FORMAT"
MASK = "***"

_SECRET_NAMES = re.compile(r"(secret|token|password|passwd|session|signature|api_?key|^key$|keys)",
                           re.I)
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^/@\s:]+):([^/@\s]+)@", re.I)
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
_SIGNATURE = re.compile(r"\bsha256=[0-9a-fA-F]{16,}")
_KEY_VALUE = re.compile(r" (?=[a-z][a-z0-9_]*=)")
_EVENT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Field names of the existing call sites, normalized so every line names ids the same way.
_ALIASES = {"incident": "incident_id", "plan": "plan_id", "event": "event_id"}


class Redactor:
    """A structlog processor: masks secrets in every field (see the module docstring)."""

    def __init__(self, secrets: Iterable[str] = ()):
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        value = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", value)
        value = _BEARER.sub(lambda m: m.group(1) + MASK, value)
        return _SIGNATURE.sub("sha256=" + MASK, value)

    def __call__(self, _logger, _name, event_dict: dict) -> dict:
        for k, v in list(event_dict.items()):
            if k.startswith("_"):
                continue
            if k != "event" and _SECRET_NAMES.search(k) and v not in (None, "", 0):
                event_dict[k] = MASK
            elif isinstance(v, str):
                event_dict[k] = self.text(v)
            elif isinstance(v, (list, tuple, dict)) or hasattr(v, "get_secret_value"):
                event_dict[k] = self.text(str(v)) if not hasattr(v, "get_secret_value") else MASK
        return event_dict


def split_key_values(_logger, _name, event_dict: dict) -> dict:
    """`notification_sent id=x attempt=2 reason=delivered on attempt 2` (a stdlib call site)
    → event `notification_sent` with fields id, attempt, reason. Other messages stay as they are."""
    if not isinstance(event_dict.get("event"), str):
        return event_dict
    head, *pairs = _KEY_VALUE.split(event_dict["event"])
    if not pairs or not _EVENT_NAME.match(head):
        return event_dict
    event_dict["event"] = head
    for pair in pairs:
        k, _, v = pair.partition("=")
        event_dict.setdefault(_ALIASES.get(k, k), v)
    return event_dict


_RECORD_KEYS = frozenset(logging.LogRecord("n", 0, "p", 0, "m", (), None).__dict__) | {"message"}


def add_extras(_logger, _name, event_dict: dict) -> dict:
    """`log.info("x", extra={...})` fields, like structlog's ExtraAdder — except that an extra
    named `event` (an event id) must not replace the event itself: it becomes `event_id`."""
    record = event_dict.get("_record")
    if record is None:
        return event_dict
    for k, v in record.__dict__.items():
        if k not in _RECORD_KEYS and not k.startswith("_"):
            event_dict[_ALIASES.get(k, k)] = v
    return event_dict


def _alias_ids(_logger, _name, event_dict: dict) -> dict:
    for short, full in _ALIASES.items():
        if short != "event" and short in event_dict and full not in event_dict:
            event_dict[full] = event_dict.pop(short)
    return event_dict


def settings_secrets(settings) -> list[str]:
    """Every secret value of a loaded `Settings`: what must never appear in a log line."""
    if settings is None:
        return []
    out = [settings.secret_key.get_secret_value(), settings.opennebula.session.get_secret_value()]
    session = out[-1]
    if ":" in session:
        out.append(session.split(":", 1)[1])  # the password alone, as an error may quote it
    for fe in settings.ingest.frontends.values():
        out.extend(k.get_secret_value() for k in fe.keys)
    out.extend(t.get_secret_value() for t in settings.api.tokens)
    if settings.ingest.alertmanager_token is not None:
        out.append(settings.ingest.alertmanager_token.get_secret_value())
    for r in settings.receivers:
        out.extend(u.get_secret_value() for u in r.urls)
    password = re.search(r"://[^/@:]*:([^/@]+)@", settings.redis_url)
    if password:
        out.append(password.group(1))
    return [s for s in out if s not in ("change-me", "oneadmin:opennebula", "opennebula")]


def resolve_format(fmt: str | None = None) -> str:
    fmt = (fmt or os.environ.get(ENV_FORMAT) or "text").lower()
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    return fmt


def configure(fmt: str | None = None, level: str | int = "INFO", settings=None,
              stream=None) -> logging.Handler:
    """Route every logger of this process through one structlog formatter on stderr; returns
    the handler (tests read what it writes). Safe to call again (it replaces the handler)."""
    fmt = resolve_format(fmt)
    os.environ[ENV_FORMAT] = fmt  # child processes (gunicorn and Celery workers) log alike
    redact = Redactor(settings_secrets(settings))
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # JSON: fields a shipper filters on; text: the call site's own words, as people grep them
        *([split_key_values] if fmt == "json" else []),
        _alias_ids,
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer = (structlog.processors.JSONRenderer(sort_keys=False) if fmt == "json"
                else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=str))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[add_extras, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer])
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("oneha")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.captureWarnings(True)  # warnings (Celery's "running as root") as log lines too
    for name in ("py.warnings", "celery", "celery.task", "celery.worker", "celery.app.trace", "kombu",
                 "gunicorn.error", "gunicorn.access", "werkzeug"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    structlog.configure(
        processors=[*[p for p in shared if p is not split_key_values],
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False)
    return handler
