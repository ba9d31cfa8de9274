"""The rules that say what is wrong with the Raft cluster.

`assess` takes the statuses of one poll (plus what the store remembers of earlier polls) and
returns findings — values with reasons — one per object: the zone (`zoneN`, leadership), its
quorum (`zoneN/quorum`, fault tolerance) and each server (`zoneN/<server id>`). Each rule is a
function of its own that returns its findings, most important first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..timefmt import duration
from .status import LEADER, RaftStatus, ZoneInfo, normalize_endpoint

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


@dataclass(frozen=True, slots=True)
class _Poll:
    """One poll as the rules see it: who answered what, who leads, and the zone's names."""

    views: tuple[ServerView, ...]
    leader: ServerView | None
    zone_obj: str  # `zoneN`: the object of the leadership findings
    zone_name: str

    def zone_finding(self, condition: str, resolved: str, severity: str, summary: str) -> Finding:
        return Finding(self.zone_obj, condition, resolved, severity, self.zone_name, summary)


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
    """The findings of one poll of every front-end, given what earlier polls saw.

    An object keeps the first finding made about it, so the rules run most important first:
    leadership (two leaders in one term > no leader > changed > flapping), then fault tolerance,
    then each server.
    """
    views, leader = server_views(statuses, zone, memory)
    zone_obj = f"zone{rules.zone_id}"
    poll = _Poll(views, leader, zone_obj, zone.name if zone else zone_obj)
    new_leader = LeaderMark(leader.server_id if leader.server_id is not None else -1,
                            leader.status.term, now) if leader else None
    elected, elections = _elections(memory, new_leader, rules, now)
    findings: dict[str, Finding] = {}
    for found in (_split_brain(poll), _no_leader(poll, memory.last_leader),
                  _leader_changed(poll, memory.previous_leader, new_leader),
                  _flapping(poll, elections, rules), _fault_tolerance(poll, zone, rules),
                  _server_findings(poll, rules)):
        for f in found:
            findings.setdefault(f.object_id, f)
    return Assessment(servers=views, leader=leader, findings=findings, new_leader=new_leader,
                      elected=elected, elections=elections, healthy=_healthy(poll))


# ---- leadership (object zoneN) ---------------------------------------------------------------

def _split_brain(poll: _Poll) -> list[Finding]:
    """More than one server claims LEADER in the same term."""
    claims: dict[int, list[ServerView]] = {}
    for v in poll.views:
        if v.status is not None and v.status.state == LEADER:
            claims.setdefault(v.status.term, []).append(v)
    return [poll.zone_finding("RAFT/SPLIT_BRAIN", "RAFT/SINGLE_LEADER", "critical",
                              f"{len(claimants)} servers claim leadership in term {term}: "
                              f"{', '.join(_who(v) for v in claimants)}")
            for term, claimants in sorted(claims.items()) if len(claimants) > 1]


def _no_leader(poll: _Poll, last: LeaderMark | None) -> list[Finding]:
    if poll.leader is not None:
        return []
    answered = [v for v in poll.views if v.status is not None]
    was = f"; the last leader was server {last.server_id} in term {last.term}" if last else ""
    return [poll.zone_finding(
        "RAFT/NO_LEADER", "RAFT/LEADER_ELECTED", "critical",
        f"no front-end is Raft leader ({len(answered)} of {len(poll.views)} answered: "
        f"{', '.join(f'{_who(v)} {v.state_name}' for v in poll.views)}){was}; "
        "OpenNebula refuses every write until one is elected")]


def _leader_changed(poll: _Poll, previous: LeaderMark | None,
                    new_leader: LeaderMark | None) -> list[Finding]:
    """The last poll saw another leader than this one."""
    if poll.leader is None or previous is None or previous.server_id == new_leader.server_id:
        return []
    return [poll.zone_finding(
        "RAFT/LEADER_CHANGED", "RAFT/LEADER_ELECTED", "warning",
        f"the Raft leader changed: server {previous.server_id} (term {previous.term}) was "
        f"lost, {_who(poll.leader)} leads since term {new_leader.term}")]


def _elections(memory: RaftMemory, new_leader: LeaderMark | None, rules: RaftRules,
               now: float) -> tuple[bool, tuple[float, ...]]:
    """(elected, the election times within the flap window): `elected` when this poll sees a
    leader (or term) not seen before."""
    last = memory.last_leader
    elected = new_leader is not None and (
        last is None or (last.server_id, last.term) != (new_leader.server_id, new_leader.term))
    window_start = now - rules.flap_window
    elections = tuple(t for t in memory.elections if t >= window_start)
    # The very first leader oneha ever sees is not an election it witnessed.
    if elected and last is not None:
        elections += (now,)
    return elected, elections


def _flapping(poll: _Poll, elections: tuple[float, ...], rules: RaftRules) -> list[Finding]:
    if len(elections) < rules.flap_count:
        return []
    return [poll.zone_finding(
        "RAFT/LEADER_FLAPPING", "RAFT/LEADER_STABLE", "warning",
        f"{len(elections)} leader elections within {duration(rules.flap_window)} "
        f"(threshold {rules.flap_count}); the front-ends may be overloaded or their "
        "network unstable")]


# ---- fault tolerance (object zoneN/quorum) -------------------------------------------------

def _fault_tolerance(poll: _Poll, zone: ZoneInfo | None, rules: RaftRules) -> list[Finding]:
    """An odd number of servers, at least three: an even one tolerates no more failures than
    one server less."""
    if not rules.check_fault_tolerance:
        return []
    n = len(zone.servers) if zone and zone.servers else len(poll.views)
    if n >= 3 and n % 2 == 1:
        return []
    tolerated = (n - 1) // 2
    advice = ("add servers to reach 3 (or 5)" if n < 3 else
              f"{n} servers tolerate no more failures than {n - 1}; use an odd number")
    return [Finding(f"{poll.zone_obj}/quorum", "RAFT/NO_FAULT_TOLERANCE", "RAFT/FAULT_TOLERANT",
                    "warning", poll.zone_name,
                    f"the zone has {n} front-end server(s): quorum is {n // 2 + 1}, it "
                    f"survives {tolerated} failure(s); {advice}")]


# ---- each server (object zoneN/<id>) ---------------------------------------------------------

def _server_findings(poll: _Poll, rules: RaftRules) -> list[Finding]:
    return [f for v in poll.views if (f := _server_finding(poll, v, rules)) is not None]


def _server_finding(poll: _Poll, v: ServerView, rules: RaftRules) -> Finding | None:
    """Unreachable > beyond the recovery window > lagging; nothing for the leader itself, nor
    for a follower's lag while there is no leader to measure it against."""
    obj = f"{poll.zone_obj}/{v.server_id if v.server_id is not None else _host_port(v.endpoint)}"
    if v.status is None:
        return Finding(obj, "RAFT/SERVER_UNREACHABLE", "RAFT/SERVER_REACHABLE", "critical", v.name,
                       f"front-end {_who(v)} at {v.endpoint} does not answer: {v.error}",
                       server_id=v.server_id)
    leader = poll.leader
    if leader is None or v is leader or v.lag is None:
        return None
    if v.lag > rules.log_retention:
        return Finding(obj, "RAFT/FOLLOWER_BEYOND_RETENTION", "RAFT/FOLLOWER_RECOVERED",
                       "critical", v.name,
                       f"follower {_who(v)} is {v.lag} log records behind the leader "
                       f"{_who(leader)}, more than the log retention of {rules.log_retention}.\n"
                       + RECOVERY_STEPS.format(leader=leader.name, server=v.name,
                                               zone_id=rules.zone_id, server_id=v.server_id),
                       server_id=v.server_id, state=v.status.state)
    if v.lag > rules.lag_threshold:
        return Finding(obj, "RAFT/FOLLOWER_LAG", "RAFT/FOLLOWER_IN_SYNC", "warning", v.name,
                       f"follower {_who(v)} is {v.lag} log records behind the leader "
                       f"{_who(leader)} (threshold {rules.lag_threshold}; it must catch up "
                       f"before {rules.log_retention} or be recovered by hand)",
                       server_id=v.server_id, state=v.status.state)
    return None


def _healthy(poll: _Poll) -> dict[str, str]:
    """How each object is when it is fine: the summary of its resolved Event."""
    healthy = {f"{poll.zone_obj}/{v.server_id}": f"front-end {_who(v)} answers as {v.state_name}"
               + (f", {v.lag} log records behind the leader" if v.lag is not None else "")
               for v in poll.views if v.status is not None and v.server_id is not None}
    if poll.leader is not None:
        healthy[poll.zone_obj] = (f"{_who(poll.leader)} is the Raft leader "
                                  f"(term {poll.leader.status.term})")
    return healthy


# ---- naming servers ------------------------------------------------------------------------

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
