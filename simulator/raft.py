"""The front-end servers' Raft state as oned's RaftManager reports it (raftstatus.xsd).

Not a consensus implementation: a model of what `one.zone.raftstatus` shows and of which calls
succeed — one leader at a time, a new one (term + 1) an election timeout after the leader is
lost if a majority is alive, followers copying the leader's log unless they lag or fell out of
the retention window (then only the recovery procedure, `reset_server`, brings them back).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ApiError, INTERNAL, REPLICATION

SOLO, CANDIDATE, FOLLOWER, LEADER = 0, 1, 2, 3
STATE_NAMES = {SOLO: "SOLO", CANDIDATE: "CANDIDATE", FOLLOWER: "FOLLOWER", LEADER: "LEADER"}


@dataclass
class Server:
    id: int
    name: str
    endpoint: str = ""
    alive: bool = True
    state: int = FOLLOWER
    term: int = 1
    votedfor: int = 0
    log_index: int = 0
    log_term: int = 1
    commit: int = 0
    replicating: bool = True  # False while lagging on purpose (lag_follower)


class Raft:
    def __init__(self, servers: int, election_timeout: float, retention: int, call_later):
        self.solo = servers == 1
        self.election_timeout = election_timeout
        self.retention = retention
        self._call_later = call_later
        self._election_gen = 0
        start_index = 0 if self.solo else 100
        self.servers = [Server(id=i, name=f"fe{i}", log_index=start_index, commit=start_index)
                        for i in range(servers)]
        if self.solo:
            self.servers[0].state = SOLO
        else:
            self.servers[0].state = LEADER
            for s in self.servers:
                s.votedfor = 0

    # ------------------------------------------------------------------ queries
    @property
    def majority(self) -> int:
        return len(self.servers) // 2 + 1

    def leader(self) -> Server | None:
        for s in self.servers:
            if s.alive and s.state in (LEADER, SOLO):
                return s
        return None

    def check_write(self, server_id: int) -> Server:
        """The server that will execute a write received by `server_id`, or the oned error.

        A follower proxies writes to the leader (RequestXRPC.cc); without one it refuses.
        """
        me = self.servers[server_id]
        leader = self.leader()
        if leader is None:
            if me.state == CANDIDATE:
                raise ApiError(INTERNAL, "Cannot process request, oned cluster in election mode")
            raise ApiError(INTERNAL, "Cannot process request, no leader found")
        if not self.solo and sum(1 for s in self.servers if s.alive) < self.majority:
            # The leader cannot get a majority to store the record.
            raise ApiError(REPLICATION, f"Error replicating log entry {leader.log_index + 1}.")
        return leader

    def status(self, server_id: int) -> dict[str, int]:
        s = self.servers[server_id]
        if self.solo:
            return {"SERVER_ID": -1, "STATE": SOLO, "TERM": 0, "VOTEDFOR": -1, "COMMIT": 0,
                    "LOG_INDEX": -1, "LOG_TERM": -1, "FEDLOG_INDEX": -1}
        return {"SERVER_ID": s.id, "STATE": s.state, "TERM": s.term, "VOTEDFOR": s.votedfor,
                "COMMIT": s.commit, "LOG_INDEX": s.log_index, "LOG_TERM": s.log_term,
                "FEDLOG_INDEX": -1}

    # ------------------------------------------------------------------ log
    def append(self, entries: int = 1) -> None:
        leader = self.leader()
        if leader is None or self.solo:
            return
        leader.log_index += entries
        leader.log_term = leader.term
        self._replicate()

    def _replicate(self) -> None:
        leader = self.leader()
        if leader is None:
            return
        in_sync = 1
        for s in self.servers:
            if s is leader or not s.alive:
                continue
            s.term = max(s.term, leader.term)
            if s.replicating and leader.log_index - s.log_index <= self.retention:
                s.log_index, s.log_term = leader.log_index, leader.log_term
            if s.log_index == leader.log_index:
                in_sync += 1
        if in_sync >= self.majority:
            leader.commit = leader.log_index
        for s in self.servers:
            if s is not leader and s.alive:
                s.commit = min(s.log_index, leader.commit)

    # ------------------------------------------------------------------ failures
    def kill(self, server_id: int) -> None:
        s = self.servers[server_id]
        if not s.alive:
            return
        was_leader = s.state in (LEADER, SOLO)
        s.alive = False
        if was_leader and not self.solo:
            s.state = FOLLOWER
            self._schedule_election()
        elif self.solo:
            pass

    def restart(self, server_id: int) -> None:
        s = self.servers[server_id]
        if s.alive:
            return
        s.alive = True
        if self.solo:
            s.state = SOLO
            return
        s.state = FOLLOWER
        live_terms = [o.term for o in self.servers if o.alive]
        s.term = max(live_terms)
        s.replicating = True
        if self.leader() is None:
            self._schedule_election()
        else:
            s.votedfor = self.leader().id
            self._replicate()

    def lag(self, server_id: int, entries: int) -> None:
        """Make a follower stop replicating `entries` behind the leader (0: resume)."""
        s = self.servers[server_id]
        leader = self.leader()
        if entries <= 0:
            s.replicating = True
        else:
            s.replicating = False
            if leader is not None and leader is not s:
                s.log_index = max(leader.log_index - entries, 0)
                s.commit = min(s.commit, s.log_index)
        self._replicate()

    def reset_server(self, server_id: int) -> None:
        """The documented recovery of a follower beyond the retention window (onedb restore +
        `onezone server-reset`): it gets the leader's database and replicates again."""
        s = self.servers[server_id]
        leader = self.leader()
        s.replicating = True
        if leader is not None and leader is not s:
            s.log_index, s.log_term = leader.log_index, leader.log_term
        self._replicate()

    def set_retention(self, n: int) -> None:
        self.retention = n
        self._replicate()

    # ------------------------------------------------------------------ election
    def _schedule_election(self) -> None:
        self._election_gen += 1
        self._call_later(self.election_timeout, self._elect, self._election_gen)

    def _elect(self, gen: int) -> None:
        if gen != self._election_gen or self.leader() is not None:
            return
        alive = [s for s in self.servers if s.alive]
        if not alive:
            return
        term = max(s.term for s in self.servers) + 1
        if len(alive) >= self.majority:
            winner = max(alive, key=lambda s: (s.log_index, -s.id))
            for s in alive:
                s.term = term
                s.votedfor = winner.id
                s.state = LEADER if s is winner else FOLLOWER
            self._replicate()
        else:
            for s in alive:  # no quorum: everyone keeps asking for votes
                s.term = term
                s.votedfor = s.id
                s.state = CANDIDATE
            self._schedule_election()
