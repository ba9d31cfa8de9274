"""Front-end HA as seen through pyone: raftstatus per server, zone info, leader loss, lag."""

import pyone
import pytest
import requests

from .conftest import client

LEADER, FOLLOWER, CANDIDATE, SOLO = 3, 2, 1, 0


def _statuses(sim):
    return {i: client(ep, sim.session).zone.raftstatus() for i, ep in enumerate(sim.endpoints)
            if sim.frontends[i].running}


def test_each_server_answers_for_itself(sim):
    st = _statuses(sim)
    assert [s.SERVER_ID for s in st.values()] == [0, 1, 2]
    assert [s.STATE for s in st.values()] == [LEADER, FOLLOWER, FOLLOWER]
    assert {s.TERM for s in st.values()} == {1}
    assert {s.VOTEDFOR for s in st.values()} == {0}
    assert len({s.LOG_INDEX for s in st.values()}) == 1
    assert {s.FEDLOG_INDEX for s in st.values()} == {-1}


def test_zone_info_lists_every_server(sim, one):
    zone = one.zone.info(0)
    assert zone.ID == 0 and zone.STATE == 0
    servers = zone.SERVER_POOL.SERVER
    assert [(s.ID, s.ENDPOINT) for s in servers] == list(enumerate(sim.endpoints))
    assert [z.ID for z in one.zonepool.info().ZONE] == [0]
    with pytest.raises(pyone.OneNoExistsException, match=r"Error getting zone \[5\]"):
        one.zone.info(5)


def test_writes_on_a_follower_run_as_the_leader_and_grow_the_log(sim):
    follower = client(sim.endpoints[2], sim.session)
    before = _statuses(sim)[0].LOG_INDEX
    assert follower.vm.action("poweroff", 1) == 1
    sim.wait_for(lambda: sim.vm(1)["state_name"] == "POWEROFF", 5)
    entry = sim.action_log[-1]
    assert (entry["server_id"], entry["method"], entry["args"], entry["ok"]) == \
        (2, "one.vm.action", ["poweroff", 1], True)
    st = _statuses(sim)
    assert st[0].LOG_INDEX > before
    assert st[1].LOG_INDEX == st[2].LOG_INDEX == st[0].LOG_INDEX == st[0].COMMIT


def test_leader_loss_then_election(make_sim):
    sim = make_sim(election_timeout=2.0)  # time to look at the cluster without a leader
    term = _statuses(sim)[0].TERM
    assert sim.kill_leader() == 0
    with pytest.raises(requests.exceptions.ConnectionError):
        client(sim.endpoints[0], sim.session).system.version()
    follower = client(sim.endpoints[1], sim.session)
    # Before the election timeout: reads work, writes find no leader.
    assert follower.vm.info(2).ID == 2
    with pytest.raises(pyone.OneInternalException,
                       match=r"^\[one.vm.action\] Cannot process request, no leader found$"):
        follower.vm.action("reboot", 2)
    assert sim.action_log[-1]["ok"] is False
    sim.wait_for(lambda: any(s.STATE == LEADER for s in _statuses(sim).values()), 10,
                 message="new leader")
    st = _statuses(sim)
    leaders = [i for i, s in st.items() if s.STATE == LEADER]
    assert leaders == [1]  # same log everywhere: the lowest id wins
    assert {s.TERM for s in st.values()} == {term + 1}
    assert follower.vm.action("reboot", 2) == 2
    # The old leader comes back as a follower of the new term.
    sim.restart_server(0)
    back = client(sim.endpoints[0], sim.session).zone.raftstatus()
    assert (back.STATE, back.TERM, back.VOTEDFOR) == (FOLLOWER, term + 1, 1)


def test_no_quorum_means_election_mode(sim):
    sim.kill_server(1)
    sim.kill_server(0)
    survivor = client(sim.endpoints[2], sim.session)
    sim.wait_for(lambda: survivor.zone.raftstatus().STATE == CANDIDATE, 5)
    with pytest.raises(pyone.OneInternalException, match="oned cluster in election mode"):
        survivor.vm.action("reboot", 1)
    sim.restart_server(1)
    sim.wait_for(lambda: any(s.STATE == LEADER for s in _statuses(sim).values()), 5)


def test_lagging_follower_and_retention_window(make_sim):
    sim = make_sim(log_retention=50)
    sim.lag_follower(2, 10)
    sim.append_log(5)
    st = _statuses(sim)
    assert st[0].LOG_INDEX - st[2].LOG_INDEX == 15
    assert st[1].LOG_INDEX == st[0].LOG_INDEX
    config = client(sim.endpoints[0], sim.session).system.config()
    assert config.RAFT.LOG_RETENTION == 50
    # Within the window it catches up when it replicates again...
    sim.lag_follower(2, 0)
    assert _statuses(sim)[2].LOG_INDEX == _statuses(sim)[0].LOG_INDEX
    # ...beyond it, it stays behind until the recovery procedure (server-reset).
    sim.lag_follower(2, 80)
    sim.lag_follower(2, 0)
    st = _statuses(sim)
    assert st[0].LOG_INDEX - st[2].LOG_INDEX == 80
    sim.reset_server(2)
    assert _statuses(sim)[2].LOG_INDEX == _statuses(sim)[0].LOG_INDEX
    sim.set_log_retention(10)
    assert client(sim.endpoints[1], sim.session).system.config().RAFT.LOG_RETENTION == 10


def test_solo_and_even_zones(make_sim):
    solo = make_sim(frontends=1)
    st = client(solo.endpoints[0], solo.session).zone.raftstatus()
    assert (st.SERVER_ID, st.STATE, st.LOG_INDEX, st.LOG_TERM) == (-1, SOLO, -1, -1)
    assert client(solo.endpoints[0], solo.session).zone.info(0).SERVER_POOL.SERVER == []
    assert client(solo.endpoints[0], solo.session).vm.action("reboot", 0) == 0
    even = make_sim(frontends=4)
    zone = client(even.endpoints[3], even.session).zone.info(0)
    assert len(zone.SERVER_POOL.SERVER) == 4


def test_without_a_leader_nobody_monitors(sim):
    sim.kill_server(0)
    sim.kill_server(1)  # no majority: no leader for as long as we like
    sim.crash_host(1)
    skipped = sim.cloud.monitor_cycles_skipped
    sim.wait_for(lambda: sim.cloud.monitor_cycles_skipped >= skipped + 3, 5)
    assert sim.host(1)["state_name"] == "MONITORED"  # only the leader's monitor marks ERROR
    sim.restart_server(1)
    sim.wait_for(lambda: sim.host(1)["state_name"] == "ERROR", 5)
