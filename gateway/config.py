"""The one place that reads the configuration file and the environment.

`load_settings(path)` reads YAML, applies environment overrides for secrets and validates once;
every error names the key and says what is expected. Each section below is owned by the part of
oneha that uses it (ingest, routing, remediation, raft); all are typed and strict (unknown keys
are errors, so a typo is caught at start-up, not at 3 a.m.).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

from .domain.auth import AuthConfig
from .redis_urls import check as check_redis_url
from .domain.drills import DrillConfig, drill_route
from .domain.model import Duration, Strict
from .domain.readiness import ReadinessConfig
from .domain.remediation.policy import RemediationConfig
from .domain.routing import InhibitRule, Route
from .errors import ConfigError


class FrontendKeys(Strict):
    """Shared HMAC keys of one front-end; several at once during a rotation."""

    keys: list[SecretStr] = Field(min_length=1)


class IngestConfig(Strict):
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    timestamp_window: Duration = 300.0
    dedup_ttl: Duration = 7 * 86400.0
    frontends: dict[str, FrontendKeys] = Field(default_factory=dict)
    alertmanager_token: SecretStr | None = None
    event_log_maxlen: int = Field(default=100_000, ge=1000)  # approximate (XADD MAXLEN ~)


class IncidentsConfig(Strict):
    # resolved incidents and ended silences are kept this long
    retention: Duration = Field(default=30 * 86400.0, gt=0)


class ApiConfig(Strict):
    """Plain bearer tokens, each with the approver role (older configs; `auth.tokens` keeps
    only a token's hash and gives it any role)."""

    tokens: list[SecretStr] = Field(default_factory=list)


class OpenNebulaConfig(Strict):
    endpoints: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:2633/RPC2"],
                                 min_length=1)
    session: SecretStr = SecretStr("oneadmin:opennebula")
    timeout: Duration = 5.0
    retries: int = Field(default=2, ge=0, le=10)

    @field_validator("endpoints")
    @classmethod
    def _http_only(cls, endpoints: list[str]) -> list[str]:
        for url in endpoints:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint {url!r} must be an http(s):// XML-RPC URL (…:2633/RPC2)")
        return endpoints


class RaftConfig(Strict):
    """The front-end Raft monitor (`oneha.raft_check`)."""

    enabled: bool = True
    interval: Duration = Field(default=10.0, gt=0)
    zone_id: int = Field(default=0, ge=0)
    lag_threshold: int = Field(default=1000, gt=0)  # log records a follower may be behind
    # oned.conf RAFT/LOG_RETENTION, the recovery window; unset: read from one.system.config
    log_retention: int | None = Field(default=None, gt=0)
    flap_window: Duration = Field(default=600.0, gt=0)
    flap_count: int = Field(default=3, ge=2)  # elections within flap_window = flapping
    poll_zone_endpoints: bool = True  # also poll servers of the zone pool not listed in endpoints
    check_fault_tolerance: bool = True  # warn about an even number or fewer than three servers

    @model_validator(mode="after")
    def _lag_below_retention(self) -> "RaftConfig":
        if self.log_retention is not None and self.lag_threshold >= self.log_retention:
            raise ValueError(f"lag_threshold ({self.lag_threshold}) must be below log_retention "
                             f"({self.log_retention}): a follower must be reported before it "
                             "falls out of the recovery window")
        return self


class ReconcilerConfig(Strict):
    """The reconciler (`oneha.reconcile`): host/VM pools against open incidents."""

    enabled: bool = True
    interval: Duration = Field(default=60.0, gt=0)


class Receiver(Strict):
    """A name people recognise plus apprise URLs; `kind` picks the message template, `language`
    the language every message to this receiver is written in."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    urls: list[SecretStr] = Field(min_length=1)
    kind: Literal["mail", "chat", "auto"] = "auto"
    language: Literal["en", "pt-BR"] = "en"  # gateway/domain/i18n.py LANGUAGES

    def kind_of(self, url: str) -> str:
        if self.kind != "auto":
            return self.kind
        return "mail" if url.split("://", 1)[0].lower() in ("mailto", "mailtos") else "chat"


class NotifyConfig(Strict):
    """Delivery of notifications: a failed URL is retried after min(backoff_base * 2**(n-1),
    backoff_max) for attempt n, up to max_attempts in all; then it is dead-lettered."""

    max_attempts: int = Field(default=6, ge=1, le=50)
    backoff_base: Duration = 10.0
    backoff_max: Duration = 600.0
    send_timeout: Duration = Field(default=30.0, gt=0)  # one apprise call, all its retries included
    retention: Duration = Field(default=7 * 86400.0, gt=0)  # delivery records and "sent" marks

    @model_validator(mode="after")
    def _backoff_order(self) -> "NotifyConfig":
        if self.backoff_max < self.backoff_base:
            raise ValueError("backoff_max must be at least backoff_base")
        return self


class Settings(Strict):
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "oneha:"
    public_url: str = "http://127.0.0.1:8080"
    secret_key: SecretStr = SecretStr("change-me")  # signs approval links and CSRF tokens
    ingest: IngestConfig = IngestConfig()
    opennebula: OpenNebulaConfig = OpenNebulaConfig()
    api: ApiConfig = ApiConfig()
    auth: AuthConfig = AuthConfig()  # users, API tokens, login and session rules
    incidents: IncidentsConfig = IncidentsConfig()
    receivers: list[Receiver] = Field(default_factory=list)
    notify: NotifyConfig = NotifyConfig()
    # Sections owned by their subsystems; each is validated by its own model.
    route: Route = Field(default_factory=Route)
    inhibit_rules: list[InhibitRule] | None = None  # None: the defaults of domain/routing.py
    remediation: RemediationConfig = RemediationConfig()
    raft: RaftConfig = RaftConfig()
    reconciler: ReconcilerConfig = ReconcilerConfig()
    readiness: ReadinessConfig = ReadinessConfig()
    drills: DrillConfig = DrillConfig()

    @field_validator("redis_url")
    @classmethod
    def _redis_url_usable(cls, url: str) -> str:
        # One server (redis://, rediss://, unix://) or a primary behind Sentinel
        # (redis+sentinel://host:26379,host:26379/<master name>[/db]); see gateway/redis_urls.py.
        return check_redis_url(url)

    @model_validator(mode="after")
    def _receivers_unique(self) -> "Settings":
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"receiver names must be unique; repeated: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _routes_name_defined_receivers(self) -> "Settings":
        self.route.check_receivers(r.name for r in self.receivers)
        return self

    @model_validator(mode="after")
    def _drills_reach_the_drill_receiver_only(self) -> "Settings":
        receiver = self.drills.receiver
        if receiver is not None and receiver not in {r.name for r in self.receivers}:
            raise ValueError(f"drills.receiver {receiver!r} is not a defined receiver")
        # First in the tree: a DRILL object never reaches the operator's routes. (The children's
        # route ids shift by one: a group open across the upgrade is told once more.)
        routes = [r for r in self.route.routes if r != drill_route(receiver)]  # validated twice
        update: dict[str, Any] = {"routes": [drill_route(receiver), *routes]}
        if receiver is not None and self.route.receivers is None:
            # "every receiver" of the root means every receiver people read, not the drill's
            update["receivers"] = [r.name for r in self.receivers if r.name != receiver]
        object.__setattr__(self, "route", self.route.model_copy(update=update))  # frozen model
        return self

    @property
    def task_queue(self) -> str:
        """The Celery queue (a Redis list) of every task; ingest pushes its messages there directly."""
        return self.key_prefix.rstrip(":") + ".tasks"

    @property
    def notify_queue(self) -> str:
        """Deliveries and group flushes: never stuck behind a storm of events."""
        return self.key_prefix.rstrip(":") + ".notify"

    def receiver(self, name: str) -> Receiver:
        for r in self.receivers:
            if r.name == name:
                return r
        raise KeyError(name)


def _env_overrides(data: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Secrets and the Redis URL may come from the environment instead of the file."""
    data = dict(data)
    if env.get("ONEHA_REDIS_URL") or env.get("REDIS_URL"):
        data["redis_url"] = env.get("ONEHA_REDIS_URL") or env["REDIS_URL"]
    if env.get("ONEHA_SECRET_KEY"):
        data["secret_key"] = env["ONEHA_SECRET_KEY"]
    if env.get("ONEHA_PUBLIC_URL"):
        data["public_url"] = env["ONEHA_PUBLIC_URL"]
    if env.get("ONEHA_API_TOKENS"):
        data["api"] = {**data.get("api", {}),
                       "tokens": [t for t in env["ONEHA_API_TOKENS"].split(",") if t]}
    if env.get("ONEHA_ONE_SESSION"):
        data["opennebula"] = {**data.get("opennebula", {}), "session": env["ONEHA_ONE_SESSION"]}
    if env.get("ONEHA_ONE_ENDPOINTS"):
        data["opennebula"] = {**data.get("opennebula", {}),
                              "endpoints": env["ONEHA_ONE_ENDPOINTS"].split(",")}
    # ONEHA_FRONTEND_<NAME>_KEYS=key1,key2 sets (or replaces) a front-end's keys.
    for var, value in env.items():
        m = re.fullmatch(r"ONEHA_FRONTEND_(.+)_KEYS", var)
        if m:
            ingest = dict(data.get("ingest", {}))
            frontends = dict(ingest.get("frontends", {}))
            frontends[m.group(1).lower()] = {"keys": [k for k in value.split(",") if k]}
            ingest["frontends"] = frontends
            data["ingest"] = ingest
    return data


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (typo? see oneha.example.yaml for the keys oneha knows)"
        lines.append(f"  - {where}: {msg}")
    return "\n".join(lines)


def settings_from_dict(data: dict[str, Any], env: dict[str, str] | None = None,
                       source: str = "<dict>") -> Settings:
    env = dict(os.environ) if env is None else env
    try:
        return Settings.model_validate(_env_overrides(data or {}, env))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_settings(path: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Settings:
    """Read `path` (or $ONEHA_CONFIG); no file at all means the built-in defaults."""
    env = dict(os.environ) if env is None else env
    path = path or env.get("ONEHA_CONFIG")
    if not path:
        return settings_from_dict({}, env, source="defaults")
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file {p} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {p} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"configuration file {p} must hold a mapping at the top level")
    return settings_from_dict(raw, env, source=str(p))
