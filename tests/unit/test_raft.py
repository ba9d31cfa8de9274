"""The Raft rules: pure, table-driven, fake clock."""

import pytest

from gateway.domain.objects import XmlError
from gateway.domain.raft import (CANDIDATE, FOLLOWER, LEADER, SOLO, Episode, Finding, LeaderMark,
                                 RaftMemory, RaftRules, RaftStatus, ZoneInfo, ZoneServer, assess,
                                 normalize_endpoint, parse_raft_status, parse_zone, plan_events,
                                 server_views)
from gateway.errors import Transient

EP = [f"http://fe{i}:2633/RPC2" for i in range(5)]
RULES = RaftRules(lag_threshold=100, log_retention=1000, flap_window=60, flap_count=3)


def zone(n=3):
    return ZoneInfo(0, "OpenNebula", tuple(ZoneServer(i, f"fe{i}", EP[i]) for i in range(n)))


def st(sid, state=FOLLOWER, term=5, log=500, commit=None):
    return RaftStatus(server_id=sid, state=state, term=term, voted_for=0,
                      commit=log if commit is None else commit, log_index=log, log_term=term)


def healthy(n=3, leader=0, term=5, log=500):
    return {EP[i]: st(i, LEADER if i == leader else FOLLOWER, term, log) for i in range(n)}


def conditions(a):
    return {obj: f.condition for obj, f in a.findings.items()}


# ---- parsing ---------------------------------------------------------------------------------

def test_raft_status_is_read_from_the_raftstatus_document():
    s = parse_raft_status("<RAFT><SERVER_ID>2</SERVER_ID><STATE>3</STATE><TERM>7</TERM>"
                          "<VOTEDFOR>2</VOTEDFOR><COMMIT>40</COMMIT><LOG_INDEX>41</LOG_INDEX>"
                          "<LOG_TERM>7</LOG_TERM><FEDLOG_INDEX>-1</FEDLOG_INDEX></RAFT>")
    assert (s.server_id, s.state_name, s.term, s.commit, s.log_index) == (2, "LEADER", 7, 40, 41)
    assert s.is_leader


def test_raft_status_without_term_is_refused():
    with pytest.raises(XmlError, match="TERM"):
        parse_raft_status("<RAFT><SERVER_ID>1</SERVER_ID><STATE>2</STATE></RAFT>")


def test_zone_lists_its_servers_in_id_order():
    z = parse_zone("<ZONE><ID>0</ID><NAME>OpenNebula</NAME><STATE>0</STATE><TEMPLATE/>"
                   "<SERVER_POOL><SERVER><ENDPOINT>http://b:2633/RPC2</ENDPOINT><ID>1</ID>"
                   "<NAME>b</NAME></SERVER><SERVER><ENDPOINT>http://A:2633/RPC2/</ENDPOINT>"
                   "<ID>0</ID><NAME>a</NAME></SERVER></SERVER_POOL></ZONE>")
    assert [s.name for s in z.servers] == ["a", "b"]
    assert z.server_by_endpoint("http://a:2633/RPC2").id == 0
    assert normalize_endpoint("HTTP://A:2633/RPC2/") == "http://a:2633/RPC2"


# ---- the rules -------------------------------------------------------------------------------

def test_a_healthy_three_server_zone_has_no_findings():
    a = assess(healthy(), zone(), RULES, RaftMemory(), now=100)
    assert a.findings == {}
    assert a.leader.server_id == 0 and a.new_leader == LeaderMark(0, 5, 100)
    assert [v.lag for v in a.servers] == [0, 0, 0]


def test_no_leader_when_every_answering_server_is_a_follower_or_candidate():
    statuses = {EP[0]: Transient("refused"), EP[1]: st(1, CANDIDATE, 6), EP[2]: st(2)}
    a = assess(statuses, zone(), RULES, RaftMemory(last_leader=LeaderMark(0, 5, 1)), now=100)
    f = a.findings["zone0"]
    assert f.condition == "RAFT/NO_LEADER" and f.resolved_condition == "RAFT/LEADER_ELECTED"
    assert "last leader was server 0 in term 5" in f.summary
    assert conditions(a)["zone0/0"] == "RAFT/SERVER_UNREACHABLE"
    assert a.new_leader is None


def test_two_leaders_in_the_same_term_is_split_brain_not_two_leaders_in_different_terms():
    same = {EP[0]: st(0, LEADER, 5), EP[1]: st(1, LEADER, 5), EP[2]: st(2)}
    assert conditions(assess(same, zone(), RULES, RaftMemory(), 1))["zone0"] == "RAFT/SPLIT_BRAIN"
    stale = {EP[0]: st(0, LEADER, 5), EP[1]: st(1, LEADER, 6), EP[2]: st(2, term=6)}
    a = assess(stale, zone(), RULES, RaftMemory(), 1)
    assert "zone0" not in a.findings
    assert a.leader.server_id == 1  # the higher term wins: server 0 is a deposed leader


def test_a_new_leader_since_the_last_poll_is_reported_as_leader_changed():
    memory = RaftMemory(previous_leader=LeaderMark(0, 5, 90), last_leader=LeaderMark(0, 5, 90))
    statuses = {EP[0]: Transient("refused"), EP[1]: st(1, LEADER, 6), EP[2]: st(2, term=6)}
    a = assess(statuses, zone(), RULES, memory, now=100)
    f = a.findings["zone0"]
    assert f.condition == "RAFT/LEADER_CHANGED" and f.resolved_condition == "RAFT/LEADER_ELECTED"
    assert "server 0 (term 5) was lost" in f.summary and "fe1 (#1)" in f.summary
    assert a.elected and a.elections == (100,)


def test_leader_elected_after_a_poll_without_leader_is_not_a_change_but_an_election():
    memory = RaftMemory(previous_leader=None, last_leader=LeaderMark(0, 5, 80))
    a = assess(healthy(leader=1, term=6), zone(), RULES, memory, now=100)
    assert "zone0" not in a.findings
    assert a.elected and a.elections == (100,)
    assert a.healthy["zone0"] == "fe1 (#1) is the Raft leader (term 6)"


def test_the_first_leader_ever_seen_does_not_count_as_an_election():
    a = assess(healthy(), zone(), RULES, RaftMemory(), now=100)
    assert a.elected and a.elections == ()


@pytest.mark.parametrize("earlier,flapping", [((50, 70), True), ((10, 70), False), ((70,), False)])
def test_leader_flapping_counts_elections_within_the_window(earlier, flapping):
    memory = RaftMemory(previous_leader=LeaderMark(2, 6, 95), last_leader=LeaderMark(2, 6, 95),
                        elections=earlier)
    a = assess(healthy(leader=2, term=7), zone(), RULES, memory, now=100)  # term 7: an election
    assert a.elections == tuple(t for t in earlier if t >= 40) + (100,)
    assert (conditions(a).get("zone0") == "RAFT/LEADER_FLAPPING") is flapping


def test_leader_changed_outranks_flapping_on_the_zone_object():
    memory = RaftMemory(previous_leader=LeaderMark(0, 5, 95), last_leader=LeaderMark(0, 5, 95),
                        elections=(60, 80))
    a = assess(healthy(leader=1, term=6), zone(), RULES, memory, now=100)
    assert conditions(a)["zone0"] == "RAFT/LEADER_CHANGED"


@pytest.mark.parametrize("lag,condition", [(100, None), (101, "RAFT/FOLLOWER_LAG"),
                                           (1000, "RAFT/FOLLOWER_LAG"),
                                           (1001, "RAFT/FOLLOWER_BEYOND_RETENTION")])
def test_follower_lag_against_threshold_and_retention(lag, condition):
    statuses = healthy(log=5000)
    statuses[EP[2]] = st(2, log=5000 - lag)
    a = assess(statuses, zone(), RULES, RaftMemory(), 1)
    assert conditions(a).get("zone0/2") == condition


def test_beyond_retention_message_carries_the_manual_recovery_steps():
    statuses = healthy(log=5000)
    statuses[EP[1]] = st(1, log=10)
    f = assess(statuses, zone(), RULES, RaftMemory(), 1).findings["zone0/1"]
    assert "4990 log records behind the leader fe0 (#0)" in f.summary
    for step in ("onedb backup", "stop OpenNebula", "onedb restore", "start OpenNebula",
                 "onezone server-reset 0 1"):
        assert step in f.summary


@pytest.mark.parametrize("n,warned", [(1, True), (2, True), (3, False), (4, True), (5, False)])
def test_fault_tolerance_needs_an_odd_number_of_at_least_three(n, warned):
    a = assess(healthy(n), zone(n), RULES, RaftMemory(), 1)
    assert ("zone0/quorum" in a.findings) is warned
    if n == 4:
        assert "quorum is 3, it survives 1 failure" in a.findings["zone0/quorum"].summary


def test_a_solo_server_leads_itself_but_has_no_fault_tolerance():
    a = assess({EP[0]: RaftStatus(-1, SOLO, 0)}, None, RULES, RaftMemory(), 1)
    assert a.leader is not None and "zone0" not in a.findings
    assert conditions(a) == {"zone0/quorum": "RAFT/NO_FAULT_TOLERANCE"}


def test_an_unreachable_server_is_named_from_the_zone_pool_or_from_memory():
    statuses = {EP[0]: st(0, LEADER), EP[1]: st(1), EP[2]: Transient("timed out")}
    by_zone = assess(statuses, zone(), RULES, RaftMemory(), 1).findings["zone0/2"]
    assert by_zone.name == "fe2" and "timed out" in by_zone.summary
    memory = RaftMemory(known_servers={normalize_endpoint(EP[2]): (2, "fe2")})
    by_memory = assess(statuses, None, RULES, memory, 1).findings["zone0/2"]
    assert by_memory.name == "fe2"
    unknown = assess(statuses, None, RULES, RaftMemory(), 1).findings
    assert "zone0/fe2:2633" in unknown


def test_server_views_compute_lag_from_the_leaders_log_index():
    statuses = {EP[0]: st(0, LEADER, log=900), EP[1]: st(1, log=850), EP[2]: Transient("x")}
    views, leader = server_views(statuses, zone())
    assert leader.server_id == 0
    assert [(v.server_id, v.state_name, v.lag) for v in views] == [
        (0, "LEADER", 0), (1, "FOLLOWER", 50), (2, "UNREACHABLE", None)]


# ---- episodes -> events ----------------------------------------------------------------------

def run_polls(*finding_sets):
    """Feed successive polls' findings through plan_events like the monitor task does."""
    active, out = {}, []
    for now, findings in enumerate(finding_sets, start=1):
        plan = plan_events(active, findings, float(now))
        out.append(plan)
        active = dict(plan.episodes)
    return out


def finding(obj="zone0/2", condition="RAFT/FOLLOWER_LAG", resolved="RAFT/FOLLOWER_IN_SYNC"):
    return {obj: Finding(obj, condition, resolved, "warning", "fe2", "behind", server_id=2)}


def test_an_episode_fires_once_resends_the_same_id_then_resolves_once():
    p1, p2, p3, p4 = run_polls(finding(), finding(), {}, {})
    assert [e.status for e in p1.firing] == ["firing"]
    assert p1.firing[0].event_id == p2.firing[0].event_id  # re-sent each poll: a dedup no-op
    assert p1.firing[0].object_key == "frontend:zone0/2"
    assert p1.firing[0].condition == "RAFT/FOLLOWER_LAG"
    assert [(e.status, e.condition) for e in p3.resolved] == [("resolved", "RAFT/FOLLOWER_IN_SYNC")]
    assert p3.ended == ["zone0/2"] and p4.resolved == [] and p4.firing == []


def test_a_condition_change_is_a_new_firing_event_of_the_same_episode_without_resolving():
    lag = finding()
    beyond = finding(condition="RAFT/FOLLOWER_BEYOND_RETENTION",
                     resolved="RAFT/FOLLOWER_RECOVERED")
    p1, p2, p3, p4 = run_polls(lag, beyond, lag, {})
    assert p2.resolved == [] and p3.resolved == []
    ids = [p.firing[0].event_id for p in (p1, p2, p3)]
    assert len(set(ids)) == 3  # back to LAG is news too
    assert p2.episodes["zone0/2"].since == p1.episodes["zone0/2"].since
    assert p4.resolved[0].condition == "RAFT/FOLLOWER_IN_SYNC"


def test_separate_episodes_of_the_same_problem_get_different_ids():
    p1, _, p3 = run_polls(finding(), {}, finding())
    assert p1.firing[0].event_id != p3.firing[0].event_id


def test_replanning_the_same_poll_gives_identical_events():
    active = {"zone0/2": Episode("zone0/2", "RAFT/FOLLOWER_LAG", "RAFT/FOLLOWER_IN_SYNC", "fe2",
                                 since=5.0, changed_at=5.0)}
    a, b = plan_events(active, {}, 9.0), plan_events(active, {}, 9.0)
    assert a.resolved == b.resolved and a.resolved[0].event_id == active["zone0/2"].resolved_id()


# ---- configuration ---------------------------------------------------------------------------

def test_raft_config_is_typed_and_refuses_a_lag_threshold_beyond_retention():
    from gateway.config import settings_from_dict
    from gateway.errors import ConfigError

    s = settings_from_dict({"raft": {"interval": "2s", "flap_window": "5m", "lag_threshold": 100,
                                     "log_retention": 500}}, env={})
    assert (s.raft.interval, s.raft.flap_window, s.raft.lag_threshold) == (2.0, 300.0, 100)
    assert settings_from_dict({}, env={}).raft.log_retention is None  # read from oned.conf
    with pytest.raises(ConfigError, match="lag_threshold .* must be below log_retention"):
        settings_from_dict({"raft": {"lag_threshold": 500, "log_retention": 400}}, env={})
    with pytest.raises(ConfigError, match="raft.intervall: unknown key"):
        settings_from_dict({"raft": {"intervall": 3}}, env={})
