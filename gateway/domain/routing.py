"""The routing tree and inhibition rules, as in Alertmanager, for OpenNebula objects.

A route matches an incident's labels (`resource`, `condition`, `state`, `host`, `cluster`, `name`,
`owner`, `group`, and the operator's `ONEHA_*` template keys: `ONEHA_TEAM=db` is `team=db`) with matchers written the way
Alertmanager writes them: `label=value`, `label!=value`, `label=~regex`, `label!~regex` (regexes
are anchored). Walking the tree follows Alertmanager: the first matching child wins unless it
says `continue: true`; when no child matches, the parent itself is the match. Children inherit
receivers and timing from their parent unless they set their own.

Config (`route:` in the YAML; every key optional):

    route:
      receivers: [ops-mail, ops-chat]       # or `receiver: ops-mail`; none = every receiver
      group_by: [host]                      # `[...]` = one group per incident
      group_wait: 30s
      group_interval: 5m
      repeat_interval: 4h
      escalate_after: 15m                   # unacknowledged this long -> next of escalate_to
      escalate_to: [oncall-lead, cto-pager]
      routes:
        - matchers: ['team="db"', 'resource=~"VM|HOST"']
          receiver: db-chat
          continue: true

    inhibit_rules:                          # default: VM alerts muted while their host's is open
      - source_matchers: [resource=HOST]
        target_matchers: [resource=VM]
        equal: [host]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from .model import Duration, Strict

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')
GROUP_BY_ALL = "..."  # Alertmanager's spelling: every label, i.e. one group per incident

DEFAULT_GROUP_BY = ("host",)
DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0


class Matcher(Strict):
    """`label op value`; written in config as one string, e.g. `resource=VM` or `host=~"node0[1-3]"`."""

    label: str
    op: str = Field(pattern=r"^(=|!=|=~|!~)$")
    value: str
    _regex: re.Pattern | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            m = _MATCHER.match(data)
            if not m:
                raise ValueError(f"matcher {data!r} is not `label=value`, `label!=value`, "
                                 "`label=~regex` or `label!~regex`")
            value = m.group(3)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            return {"label": m.group(1), "op": m.group(2), "value": value}
        return data

    def model_post_init(self, _context: Any) -> None:
        if self.op in ("=~", "!~"):
            try:
                self._regex = re.compile(f"(?:{self.value})\\Z")
            except re.error as exc:
                raise ValueError(f"matcher {self}: bad regular expression: {exc}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = str(labels.get(self.label, ""))  # a missing label reads as "", as in Alertmanager
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self._regex.match(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


class Route(Strict):
    model_config = ConfigDict(populate_by_name=True)  # `continue_` or its YAML name `continue`

    receivers: list[str] | None = None
    matchers: list[Matcher] = Field(default_factory=list)
    continue_: bool = Field(default=False, alias="continue")
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None
    escalate_after: Duration | None = None
    escalate_to: list[str] | None = None
    routes: list["Route"] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _receiver_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "receiver" in data:
            data = dict(data)
            if "receivers" in data:
                raise ValueError("give either `receiver` or `receivers`, not both")
            one = data.pop("receiver")
            data["receivers"] = [one] if isinstance(one, str) else one
        return data

    @model_validator(mode="after")
    def _positive_intervals(self) -> "Route":
        for name in ("group_interval", "repeat_interval", "escalate_after"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be longer than 0s")
        return self

    def receiver_names(self) -> set[str]:
        names = set(self.receivers or ()) | set(self.escalate_to or ())
        for child in self.routes:
            names |= child.receiver_names()
        return names

    def check_receivers(self, known: Iterable[str]) -> None:
        """Raise ValueError naming every receiver the tree uses but `receivers:` does not define."""
        known = set(known)
        unknown = sorted(self.receiver_names() - known)
        if unknown:
            raise ValueError(f"route uses undefined receiver(s) {', '.join(unknown)}; defined: "
                             f"{', '.join(sorted(known)) or '(none)'}")


class InhibitRule(Strict):
    """While an open incident matches `source_matchers`, incidents matching `target_matchers` with
    the same values of the `equal` labels are muted (recorded, not sent)."""

    source_matchers: list[Matcher] = Field(min_length=1)
    target_matchers: list[Matcher] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)

    def inhibits(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        return (matches_all(self.source_matchers, source)
                and matches_all(self.target_matchers, target)
                and all(str(source.get(k, "")) == str(target.get(k, "")) for k in self.equal))


DEFAULT_INHIBIT_RULES = (
    InhibitRule(source_matchers=["resource=HOST"], target_matchers=["resource=VM"],
                equal=["host"]),
)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """A route an incident reached, with everything inherited resolved."""

    route_id: str  # position in the tree: "root", "root.0", "root.0.2"
    receivers: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    escalate_after: float | None
    escalate_to: tuple[str, ...]
    matchers: tuple[str, ...]  # the path's matchers, for "why did this go there"

    def group_key(self, labels: Mapping[str, str], incident_id: str) -> str:
        """The aggregation group of an incident on this route: route + the group_by values."""
        if GROUP_BY_ALL in self.group_by:
            return f"{self.route_id}|incident={incident_id}"
        values = ",".join(f"{k}={labels.get(k, '')}" for k in self.group_by)
        return f"{self.route_id}|{values}"

    def describe(self) -> str:
        where = " and ".join(self.matchers) or "everything"
        return f"route {self.route_id} ({where}) -> {', '.join(self.receivers) or '(nobody)'}"


def match_routes(root: Route, labels: Mapping[str, str], all_receivers: Iterable[str]) -> list[RouteMatch]:
    """The routes an object with `labels` reaches (at least the root)."""
    base = RouteMatch(
        route_id="root",
        receivers=tuple(root.receivers if root.receivers is not None else all_receivers),
        group_by=tuple(root.group_by if root.group_by is not None else DEFAULT_GROUP_BY),
        group_wait=root.group_wait if root.group_wait is not None else DEFAULT_GROUP_WAIT,
        group_interval=root.group_interval if root.group_interval is not None
        else DEFAULT_GROUP_INTERVAL,
        repeat_interval=root.repeat_interval if root.repeat_interval is not None
        else DEFAULT_REPEAT_INTERVAL,
        escalate_after=root.escalate_after,
        escalate_to=tuple(root.escalate_to or ()),
        matchers=tuple(str(m) for m in root.matchers),
    )
    return _walk(root, base, labels)


def _walk(route: Route, resolved: RouteMatch, labels: Mapping[str, str]) -> list[RouteMatch]:
    found: list[RouteMatch] = []
    for i, child in enumerate(route.routes):
        if not matches_all(child.matchers, labels):
            continue
        found.extend(_walk(child, _inherit(resolved, child, f"{resolved.route_id}.{i}"), labels))
        if not child.continue_:
            break
    return found or [resolved]


def _inherit(parent: RouteMatch, child: Route, route_id: str) -> RouteMatch:
    def pick(name: str):
        value = getattr(child, name)
        return getattr(parent, name) if value is None else value
    return RouteMatch(
        route_id=route_id,
        receivers=tuple(pick("receivers")),
        group_by=tuple(pick("group_by")),
        group_wait=pick("group_wait"),
        group_interval=pick("group_interval"),
        repeat_interval=pick("repeat_interval"),
        escalate_after=pick("escalate_after"),
        escalate_to=tuple(pick("escalate_to")),
        matchers=parent.matchers + tuple(str(m) for m in child.matchers),
    )


def parse_labels(pairs: Iterable[str]) -> dict[str, str]:
    """`["resource=VM", "host=node07"]` -> dict (for `oneha routes test`)."""
    labels: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"{pair!r} is not LABEL=VALUE")
        key, value = pair.split("=", 1)
        if not key:
            raise ValueError(f"{pair!r} has an empty label name")
        labels[key] = value
    return labels
