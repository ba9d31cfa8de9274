"""The front-end Raft cluster as oneha sees it, and the rules that say what is wrong with it.

Pure: `RaftStatus`/`ZoneInfo` are read from `one.zone.raftstatus` / `one.zone.info` XML; the rules
take the statuses of one poll (plus what the store remembers of earlier polls) and return
findings — values with reasons — that become `Event`s for the normal incident path.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from .events import Event
from .objects import XmlError, _int, _text, parse_xml
from .timefmt import duration

# include/RaftManager.h
SOLO, CANDIDATE, FOLLOWER, LEADER = 0, 1, 2, 3
RAFT_STATES = {SOLO: "SOLO", CANDIDATE: "CANDIDATE", FOLLOWER: "FOLLOWER", LEADER: "LEADER"}


@dataclass(frozen=True, slots=True)
class RaftStatus:
    """One server's own view (`one.zone.raftstatus`): every server answers for itself."""

    server_id: int
    state: int
    term: int
    voted_for: int = -1
    commit: int = -1
    log_index: int = -1
    log_term: int = -1
    fedlog_index: int = -1

    @property
    def state_name(self) -> str:
        return RAFT_STATES.get(self.state, f"STATE_{self.state}")

    @property
    def is_leader(self) -> bool:
        # A SOLO server (no HA configured) is its own leader for writes.
        return self.state in (LEADER, SOLO)


@dataclass(frozen=True, slots=True)
class ZoneServer:
    id: int
    name: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class ZoneInfo:
    id: int
    name: str
    servers: tuple[ZoneServer, ...] = ()

    def server_by_endpoint(self, endpoint: str) -> ZoneServer | None:
        wanted = normalize_endpoint(endpoint)
        for s in self.servers:
            if normalize_endpoint(s.endpoint) == wanted:
                return s
        return None

    def server(self, server_id: int) -> ZoneServer | None:
        for s in self.servers:
            if s.id == server_id:
                return s
        return None


def normalize_endpoint(url: str) -> str:
    """`http://H:2633/RPC2/` and `http://h:2633/RPC2` name the same server."""
    url = url.strip().rstrip("/")
    if "://" in url:
        scheme, rest = url.split("://", 1)
        host, _, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}/{path}"
    return url


def parse_raft_status(text: str | bytes) -> RaftStatus:
    root = parse_xml(text, "RAFT")
    server_id, state, term = _int(root, "SERVER_ID"), _int(root, "STATE"), _int(root, "TERM")
    if server_id is None or state is None or term is None:
        raise XmlError("<RAFT> lacks an integer SERVER_ID, STATE or TERM")

    def opt(path: str) -> int:
        value = _int(root, path)
        return -1 if value is None else value

    return RaftStatus(server_id=server_id, state=state, term=term, voted_for=opt("VOTEDFOR"),
                      commit=opt("COMMIT"), log_index=opt("LOG_INDEX"), log_term=opt("LOG_TERM"),
                      fedlog_index=opt("FEDLOG_INDEX"))


def parse_zone(text: str | bytes) -> ZoneInfo:
    root = parse_xml(text, "ZONE")
    zone_id = _int(root, "ID")
    if zone_id is None:
        raise XmlError("<ZONE> has no integer <ID>")
    servers = []
    for el in root.findall("SERVER_POOL/SERVER"):
        sid = _int(el, "ID")
        if sid is None:
            raise XmlError("<ZONE>/SERVER_POOL/SERVER has no integer <ID>")
        servers.append(ZoneServer(id=sid, name=_text(el, "NAME") or f"server{sid}",
                                  endpoint=_text(el, "ENDPOINT") or ""))
    return ZoneInfo(id=zone_id, name=_text(root, "NAME") or f"zone{zone_id}",
                    servers=tuple(sorted(servers, key=lambda s: s.id)))


# ---- the rules ------------------------------------------------------------------------------

RECOVERY_STEPS = (
    "This follower fell out of the Raft recovery window: the leader already purged the log "
    "records it misses, so it cannot catch up by itself. Recover it by hand (OpenNebula "
    "'Front-end HA - Recovering a server'):\n"
    "  1. On the leader ({leader}): `onedb backup` and copy the backup to {server} (take a fresh "
    "one, never reuse an old backup)\n"
    "  2. On {server}: stop OpenNebula (`systemctl stop opennebula`)\n"
    "  3. On {server}: `onedb restore` the copied backup\n"
    "  4. On {server}: start OpenNebula (`systemctl start opennebula`)\n"
    "  5. On the leader: `onezone server-reset {zone_id} {server_id}`"
)


@dataclass(frozen=True, slots=True)
class RaftRules:
    """Thresholds of the checks (from `Settings.raft`)."""

    zone_id: int = 0
    lag_threshold: int = 1000  # log records a follower may be behind before it is reported
    log_retention: int = 250000  # oned.conf RAFT/LOG_RETENTION: the recovery window
    flap_window: float = 600.0
    flap_count: int = 3  # leader elections within flap_window that make "flapping"
    check_fault_tolerance: bool = True


@dataclass(frozen=True, slots=True)
class Finding:
    """Something wrong with one object (`zone0`, `zone0/quorum` or `zone0/<server id>`)."""

    object_id: str
    condition: str  # RAFT/NO_LEADER, RAFT/FOLLOWER_LAG, ...
    resolved_condition: str  # what the resolved Event says when it goes away
    severity: str  # critical | warning
    name: str  # what people call the object: the zone or the server name
    summary: str
    server_id: int | None = None
    state: int | None = None  # the server's Raft state code, when it answered


@dataclass(frozen=True, slots=True)
class ServerView:
    """One row of `oneha raft`: one polled endpoint and what it said."""

    endpoint: str
    server_id: int | None
    name: str
    status: RaftStatus | None
    error: str | None
    lag: int | None  # leader's LOG_INDEX minus this server's, None when unknown

    @property
    def state_name(self) -> str:
        return self.status.state_name if self.status else "UNREACHABLE"


@dataclass(frozen=True, slots=True)
class LeaderMark:
    server_id: int
    term: int
    at: float


@dataclass(frozen=True, slots=True)
class RaftMemory:
    """What the store remembers of earlier polls."""

    previous_leader: LeaderMark | None = None  # the leader seen by the last poll (None: none)
    last_leader: LeaderMark | None = None  # the last leader ever seen
    elections: tuple[float, ...] = ()  # times a new leader (or term) was seen, oldest first
    # endpoint (normalized) -> (server id, name): names servers that stopped answering
    known_servers: dict[str, tuple[int, str]] = field(default_factory=dict)

    def server_for(self, endpoint: str) -> tuple[int, str] | None:
        return self.known_servers.get(normalize_endpoint(endpoint))


@dataclass(frozen=True, slots=True)
class Assessment:
    servers: tuple[ServerView, ...]
    leader: ServerView | None
    findings: dict[str, Finding]  # by object_id: the one most important finding per object
    new_leader: LeaderMark | None  # the leader to remember (None: no leader now)
    elected: bool  # a leader (or term) not seen before: counts towards flapping
    elections: tuple[float, ...]  # the election times to remember (within the window)
    healthy: dict[str, str] = field(default_factory=dict)  # object id -> how it is when fine


def server_views(statuses: dict[str, RaftStatus | Exception], zone: ZoneInfo | None,
                 memory: RaftMemory | None = None
                 ) -> tuple[tuple[ServerView, ...], ServerView | None]:
    """Who is who, and who leads: the leader is the server claiming LEADER with the highest term."""
    memory = memory or RaftMemory()
    raw = []
    for endpoint, status in statuses.items():
        answered = status if isinstance(status, RaftStatus) else None
        server_id, name = _identify(endpoint, answered, zone, memory)
        raw.append((endpoint, server_id, name, answered,
                    None if answered else _reason(status)))
    leaders = [r for r in raw if r[3] is not None and r[3].is_leader]
    leader_row = max(leaders, key=lambda r: r[3].term) if leaders else None
    views = []
    for endpoint, server_id, name, status, error in raw:
        lag = None
        if status is not None and leader_row is not None and status.log_index >= 0:
            lag = max(0, leader_row[3].log_index - status.log_index)
        views.append(ServerView(endpoint, server_id, name, status, error, lag))
    views.sort(key=lambda v: (v.server_id is None, v.server_id if v.server_id is not None else 0,
                              v.endpoint))
    leader = next((v for v in views if leader_row and v.endpoint == leader_row[0]), None)
    return tuple(views), leader


def assess(statuses: dict[str, RaftStatus | Exception], zone: ZoneInfo | None, rules: RaftRules,
           memory: RaftMemory, now: float) -> Assessment:
    """The findings of one poll of every front-end, given what earlier polls saw."""
    views, leader = server_views(statuses, zone, memory)
    zone_obj = f"zone{rules.zone_id}"
    zone_name = zone.name if zone else zone_obj
    findings: dict[str, Finding] = {}

    def add(f: Finding) -> None:
        if f.object_id not in findings:  # callers add the most important finding first
            findings[f.object_id] = f

    # Leadership (object zoneN): two leaders in one term > no leader > changed > flapping.
    claims: dict[int, list[ServerView]] = {}
    for v in views:
        if v.status is not None and v.status.state == LEADER:
            claims.setdefault(v.status.term, []).append(v)
    for term, claimants in sorted(claims.items()):
        if len(claimants) > 1:
            add(Finding(zone_obj, "RAFT/SPLIT_BRAIN", "RAFT/SINGLE_LEADER", "critical", zone_name,
                        f"{len(claimants)} servers claim leadership in term {term}: "
                        f"{', '.join(_who(v) for v in claimants)}"))
    new_leader = LeaderMark(leader.server_id if leader.server_id is not None else -1,
                            leader.status.term, now) if leader else None
    if leader is None:
        answered = [v for v in views if v.status is not None]
        lost = memory.last_leader
        was = f"; the last leader was server {lost.server_id} in term {lost.term}" if lost else ""
        add(Finding(zone_obj, "RAFT/NO_LEADER", "RAFT/LEADER_ELECTED", "critical", zone_name,
                    f"no front-end is Raft leader ({len(answered)} of {len(views)} answered: "
                    f"{', '.join(f'{_who(v)} {v.state_name}' for v in views)}){was}; "
                    "OpenNebula refuses every write until one is elected"))
    prev = memory.previous_leader
    if leader is not None and prev is not None and prev.server_id != new_leader.server_id:
        add(Finding(zone_obj, "RAFT/LEADER_CHANGED", "RAFT/LEADER_ELECTED", "warning", zone_name,
                    f"the Raft leader changed: server {prev.server_id} (term {prev.term}) was "
                    f"lost, {_who(leader)} leads since term {new_leader.term}"))
    last = memory.last_leader
    elected = new_leader is not None and (
        last is None or (last.server_id, last.term) != (new_leader.server_id, new_leader.term))
    window_start = now - rules.flap_window
    elections = tuple(t for t in memory.elections if t >= window_start)
    # The very first leader oneha ever sees is not an election it witnessed.
    if elected and last is not None:
        elections += (now,)
    if len(elections) >= rules.flap_count:
        add(Finding(zone_obj, "RAFT/LEADER_FLAPPING", "RAFT/LEADER_STABLE", "warning", zone_name,
                    f"{len(elections)} leader elections within {duration(rules.flap_window)} "
                    f"(threshold {rules.flap_count}); the front-ends may be overloaded or their "
                    "network unstable"))

    # Fault tolerance (object zoneN/quorum): an odd number of servers, at least three.
    if rules.check_fault_tolerance:
        n = len(zone.servers) if zone and zone.servers else len(views)
        if n < 3 or n % 2 == 0:
            tolerated = (n - 1) // 2
            advice = ("add servers to reach 3 (or 5)" if n < 3 else
                      f"{n} servers tolerate no more failures than {n - 1}; use an odd number")
            add(Finding(f"{zone_obj}/quorum", "RAFT/NO_FAULT_TOLERANCE", "RAFT/FAULT_TOLERANT",
                        "warning", zone_name,
                        f"the zone has {n} front-end server(s): quorum is {n // 2 + 1}, it "
                        f"survives {tolerated} failure(s); {advice}"))

    # Per server (object zoneN/<id>): unreachable > beyond the recovery window > lagging.
    for v in views:
        obj = f"{zone_obj}/{v.server_id if v.server_id is not None else _host_port(v.endpoint)}"
        if v.status is None:
            add(Finding(obj, "RAFT/SERVER_UNREACHABLE", "RAFT/SERVER_REACHABLE", "critical", v.name,
                        f"front-end {_who(v)} at {v.endpoint} does not answer: {v.error}",
                        server_id=v.server_id))
            continue
        if leader is None or v is leader or v.lag is None:
            continue
        if v.lag > rules.log_retention:
            add(Finding(obj, "RAFT/FOLLOWER_BEYOND_RETENTION", "RAFT/FOLLOWER_RECOVERED",
                        "critical", v.name,
                        f"follower {_who(v)} is {v.lag} log records behind the leader "
                        f"{_who(leader)}, more than the log retention of {rules.log_retention}.\n"
                        + RECOVERY_STEPS.format(leader=leader.name, server=v.name,
                                                zone_id=rules.zone_id, server_id=v.server_id),
                        server_id=v.server_id, state=v.status.state))
        elif v.lag > rules.lag_threshold:
            add(Finding(obj, "RAFT/FOLLOWER_LAG", "RAFT/FOLLOWER_IN_SYNC", "warning", v.name,
                        f"follower {_who(v)} is {v.lag} log records behind the leader "
                        f"{_who(leader)} (threshold {rules.lag_threshold}; it must catch up "
                        f"before {rules.log_retention} or be recovered by hand)",
                        server_id=v.server_id, state=v.status.state))
    healthy = {f"{zone_obj}/{v.server_id}": f"front-end {_who(v)} answers as {v.state_name}"
               + (f", {v.lag} log records behind the leader" if v.lag is not None else "")
               for v in views if v.status is not None and v.server_id is not None}
    if leader is not None:
        healthy[zone_obj] = f"{_who(leader)} is the Raft leader (term {leader.status.term})"
    return Assessment(servers=views, leader=leader, findings=findings, new_leader=new_leader,
                      elected=elected, elections=elections, healthy=healthy)


def _identify(endpoint: str, status: RaftStatus | None, zone: ZoneInfo | None,
              memory: RaftMemory) -> tuple[int | None, str]:
    server = None
    if zone is not None:
        server = zone.server_by_endpoint(endpoint)
        if server is None and status is not None and status.server_id >= 0:
            server = zone.server(status.server_id)
    if server is not None:
        return server.id, server.name
    if status is not None:
        sid = status.server_id if status.server_id >= 0 else None
        known = memory.server_for(endpoint)
        if known and known[0] == sid:
            return known
        return sid, f"server{sid}" if sid is not None else _host_port(endpoint)
    known = memory.server_for(endpoint)
    if known:
        return known
    return None, _host_port(endpoint)


def _reason(status: object) -> str:
    return str(status) if isinstance(status, Exception) else f"unexpected answer {status!r:.60}"


def _who(v: ServerView) -> str:
    return f"{v.name} (#{v.server_id})" if v.server_id is not None else v.name


def _host_port(endpoint: str) -> str:
    rest = endpoint.split("://", 1)[-1]
    return rest.split("/", 1)[0]


# ---- findings over time -> Events -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Episode:
    """An object's problem from the poll that first saw it to the poll that no longer does.

    Its condition may change on the way (a lagging follower falls out of the retention window);
    each change is a new firing Event of the same episode, so the incident stays one incident.
    """

    object_id: str
    condition: str
    resolved_condition: str
    name: str
    since: float  # first seen
    changed_at: float  # the current condition first seen
    seq: int = 0  # condition changes within the episode

    def firing_id(self) -> str:
        return _event_id("raft", self.object_id, self.since, self.seq, self.condition)

    def resolved_id(self) -> str:
        return _event_id("raft", self.object_id, self.since, "resolved")


@dataclass(frozen=True, slots=True)
class EventPlan:
    """What one poll changes: episodes to save, Events to record, episodes to forget after."""

    episodes: dict[str, Episode]  # every current episode (new, changed and continuing)
    firing: list[Event]  # one per current episode; re-sent every poll (same id: a dedup no-op)
    resolved: list[Event]
    ended: list[str]  # object ids to forget once their resolved Events are recorded


def plan_events(active: dict[str, Episode], findings: dict[str, Finding], now: float,
                zone_label: str = "zone0", healthy_summaries: dict[str, str] | None = None
                ) -> EventPlan:
    """Compare the episodes open so far with this poll's findings.

    Event ids are deterministic per episode and condition, so a poll that runs twice, or that
    failed half-way and runs again, records nothing twice.
    """
    episodes: dict[str, Episode] = {}
    firing: list[Event] = []
    for object_id, f in sorted(findings.items()):
        ep = active.get(object_id)
        if ep is None:
            ep = Episode(object_id, f.condition, f.resolved_condition, f.name, since=now,
                         changed_at=now)
        elif ep.condition != f.condition:
            ep = Episode(object_id, f.condition, f.resolved_condition, f.name, since=ep.since,
                         changed_at=now, seq=ep.seq + 1)
        episodes[object_id] = ep
        firing.append(_event(ep.firing_id(), ep, "firing", f.condition, ep.changed_at, f.summary,
                             f.severity, zone_label, f.server_id, f.state))
    resolved: list[Event] = []
    ended: list[str] = []
    for object_id, ep in sorted(active.items()):
        if object_id in findings:
            continue
        summary = (healthy_summaries or {}).get(object_id) or _resolved_summary(ep)
        resolved.append(_event(ep.resolved_id(), ep, "resolved", ep.resolved_condition, now,
                               summary, "info", zone_label, None, None))
        ended.append(object_id)
    return EventPlan(episodes=episodes, firing=firing, resolved=resolved, ended=ended)


def _resolved_summary(ep: Episode) -> str:
    text = {
        "RAFT/LEADER_ELECTED": "a Raft leader is elected and stable",
        "RAFT/SINGLE_LEADER": "one Raft leader again",
        "RAFT/LEADER_STABLE": "the Raft leader is stable again",
        "RAFT/FAULT_TOLERANT": "the zone has an odd number of front-ends, at least three",
        "RAFT/SERVER_REACHABLE": f"front-end {ep.name} answers again",
        "RAFT/FOLLOWER_IN_SYNC": f"follower {ep.name} caught up with the leader",
        "RAFT/FOLLOWER_RECOVERED": f"follower {ep.name} is back in sync with the leader",
    }
    return text.get(ep.resolved_condition, f"{ep.name}: {ep.condition} is over")


def _event(event_id: str, ep: Episode, status: str, condition: str, at: float, summary: str,
           severity: str, zone_label: str, server_id: int | None, state: int | None) -> Event:
    labels = {"resource": "FRONTEND", "zone": zone_label, "name": ep.name, "severity": severity,
              "condition": condition}
    if "/" in ep.object_id:
        labels["frontend"] = ep.name
    if server_id is not None:
        labels["server_id"] = str(server_id)
    return Event(event_id=event_id, source="raft", resource="FRONTEND", object_id=ep.object_id,
                 name=ep.name, status=status, condition=condition, occurred_at=at, state=state,
                 frontend=labels.get("frontend", ""), summary=summary, labels=labels)


def _event_id(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]
