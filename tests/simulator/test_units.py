"""Pure pieces of the simulator, without servers or threads (the Raft model runs on a fake
scheduler: callbacks are collected and fired by hand)."""

import pytest

from simulator.control import parse_arguments
from simulator.errors import ApiError, INTERNAL, REPLICATION
from simulator.hooks import Hook, build_hook, expand_arguments, parse_template
from simulator.raft import CANDIDATE, FOLLOWER, LEADER, Raft


class FakeScheduler:
    def __init__(self):
        self.pending = []

    def __call__(self, delay, fn, *args):
        self.pending.append((delay, fn, args))

    def fire_all(self):
        pending, self.pending = self.pending, []
        for _, fn, args in pending:
            fn(*args)


def test_parse_template_forms():
    tmpl = parse_template('A = "x y"\nb=plain # trailing comment\n'
                          'C = "say \\"hi\\""\nV = [ K = "1", L = "2" ]\nD="multi\nline"\n')
    assert tmpl == {"A": "x y", "B": "plain", "C": 'say "hi"', "D": "multi\nline"}
    assert parse_template("<TEMPLATE><NAME>n</NAME><TYPE>api</TYPE></TEMPLATE>") == \
        {"NAME": "n", "TYPE": "api"}
    with pytest.raises(ApiError) as err:
        parse_template('A = "x"\n= broken')
    assert err.value.code == INTERNAL and "Parse error" in err.value.message


def test_arguments_expansion_is_token_based():
    assert expand_arguments("$TEMPLATE -m $API", "T64", "") == "T64 -m"
    assert expand_arguments("x$TEMPLATE $TEMPLATEs", "T64", "") == "x$TEMPLATE $TEMPLATEs"
    assert expand_arguments("$API $TEMPLATE", "T64", "") == "T64"  # as onehem: join, then strip
    assert expand_arguments("", "T64", "A64") == ""


@pytest.mark.parametrize("value, on_stdin", [("yes", True), ("YES", True), ("true", False),
                                             ("1", False), (None, False)])
def test_stdin_quirk(value, on_stdin):
    tmpl = {"COMMAND": "x"} | ({"ARGUMENTS_STDIN": value} if value is not None else {})
    assert Hook(0, "h", "state", tmpl).arguments_on_stdin is on_stdin


def test_timeout_parsing():
    assert Hook(0, "h", "state", {"TIMEOUT": "15"}).timeout == 15
    assert Hook(0, "h", "state", {"TIMEOUT": "abc"}).timeout is None  # Ruby's to_i -> 0
    assert Hook(0, "h", "state", {}).timeout is None


def test_build_hook_keeps_extra_attributes_and_normalises():
    hook = build_hook(3, 'NAME=n TYPE=STATE RESOURCE=vm ON=running COMMAND=c REMOTE=yes '
                         'TIMEOUT=9', {})
    assert (hook.id, hook.type, hook.resource) == (3, "state", "VM")
    assert hook.template["STATE"] == "ACTIVE" and hook.template["LCM_STATE"] == "RUNNING"
    assert hook.template["REMOTE"] == "YES" and hook.timeout == 9
    assert "<TIMEOUT>" not in hook.to_xml(with_log=True)  # not in hook.xsd
    assert hook.matches_vm("ACTIVE", "RUNNING") and not hook.matches_host("RUNNING")


def test_raft_election_needs_a_majority():
    sched = FakeScheduler()
    raft = Raft(3, election_timeout=1.0, retention=10, call_later=sched)
    assert raft.check_write(1) is raft.servers[0]
    raft.kill(0)
    with pytest.raises(ApiError, match="no leader found"):
        raft.check_write(1)
    assert [d for d, _, _ in sched.pending] == [1.0]
    raft.kill(1)
    sched.fire_all()  # one server alive of three: no quorum, it campaigns
    assert raft.servers[2].state == CANDIDATE and raft.servers[2].term == 2
    with pytest.raises(ApiError, match="election mode"):
        raft.check_write(2)
    raft.restart(1)
    sched.fire_all()  # the stale election timer is ignored, the fresh one elects
    sched.fire_all()
    leader = raft.leader()
    assert leader is not None and leader.state == LEADER and leader.term >= 3
    assert {s.state for s in raft.servers if s is not leader and s.alive} == {FOLLOWER}


def test_raft_leader_without_quorum_cannot_replicate():
    raft = Raft(3, 1.0, 10, FakeScheduler())
    raft.kill(1)
    raft.kill(2)
    with pytest.raises(ApiError) as err:
        raft.check_write(0)
    assert err.value.code == REPLICATION


def test_raft_retention_window():
    raft = Raft(3, 1.0, retention=10, call_later=FakeScheduler())
    raft.lag(2, 5)
    raft.append(3)
    assert raft.servers[0].log_index - raft.servers[2].log_index == 8
    assert raft.servers[0].commit == raft.servers[0].log_index  # 2 of 3 in sync: committed
    raft.lag(2, 0)
    assert raft.servers[2].log_index == raft.servers[0].log_index
    raft.lag(2, 11)
    raft.lag(2, 0)
    assert raft.servers[0].log_index - raft.servers[2].log_index == 11  # beyond: stuck
    raft.reset_server(2)
    assert raft.servers[2].log_index == raft.servers[0].log_index


def test_control_arguments():
    assert parse_arguments("lag_follower", {"server_id": 1, "entries": 5}) == \
        {"server_id": 1, "entries": 5}
    with pytest.raises(ValueError, match="'enabled' must be bool"):
        parse_arguments("set_hooks_enabled", {"enabled": 1})
    with pytest.raises(ValueError, match="must be int"):
        parse_arguments("crash_host", {"host_id": True})
    with pytest.raises(ValueError, match="JSON object"):
        parse_arguments("kill_leader", [])
