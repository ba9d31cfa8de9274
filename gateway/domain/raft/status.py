"""What one front-end says about the Raft cluster, read from OpenNebula's XML.

`RaftStatus` is one server's own view (`one.zone.raftstatus`); `ZoneInfo` is the zone's server
pool (`one.zone.info`), which names the servers behind the endpoints oneha polls.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..objects import XmlError, _int, _text, parse_xml

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
