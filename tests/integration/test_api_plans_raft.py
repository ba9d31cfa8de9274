"""The API's newer routes on real components: a plan approved or denied by its id (as `oneha
approve`), by an approver only; the front-ends' Raft status after a real poll of the simulator."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from simulator import CloudSpec, HostSpec, Simulator
from tasks.monitor import run_raft_check
from tests.support.auth import bearer
from tests.support.remediation import Driver, remediation_config, shared_vms

CLOUD = CloudSpec(hosts=[HostSpec(f"node{i:02d}", cpu=3200, memory_mb=65536) for i in (1, 2, 3)],
                  vms=shared_vms(2), frontends=3, monitoring_interval=0.2)


@pytest.fixture
def sim():
    with Simulator(CLOUD) as s:
        yield s


@pytest.fixture
def waiting(sim, key_prefix):
    """node 0 crashed, its plan waits for approval: (driver, plan id, a test client)."""
    d = Driver(remediation_config(key_prefix, sim, mode="approval"))
    sim.crash_host(0)
    sim.wait_for(lambda: all(v.is_unknown for v in d.one.vms()), timeout=10)
    iid = d.event("HOST", 0).decision.incident_id
    d.run_until_idle(timeout=3)
    (pid,) = d.store.plan_ids(iid)
    yield d, pid, create_app(d.settings).test_client()
    d.rt.redis.delete(d.settings.task_queue)  # what the approval sent, with no worker to take it


def test_a_plan_is_decided_by_its_id_by_an_approver(waiting):
    d, pid, client = waiting
    shown = client.get(f"/v1/plans/{pid}", headers=bearer("viewer"))
    assert shown.status_code == 200 and shown.get_json()["status"]["status"] == "awaiting_approval"
    assert shown.get_json()["plan"]["plan_id"] == pid
    refused = client.post(f"/v1/plans/{pid}/decision", json={"decision": "approve"},
                          headers=bearer("viewer"))
    assert refused.status_code == 403 and d.store.plan_state(pid)["status"] == "awaiting_approval"
    bad = client.post(f"/v1/plans/{pid}/decision", json={"decision": "maybe"},
                      headers=bearer("approver"))
    assert bad.status_code == 400 and bad.get_json()["error"] == "bad_decision"
    done = client.post(f"/v1/plans/{pid}/decision", json={"decision": "approve", "approver": "ana"},
                       headers=bearer("approver"))
    assert done.status_code == 200 and done.get_json() == {"decision": "approved",
                                                           "status": "executing"}
    assert d.store.plan_state(pid)["approved_by"] == "ana (token test-approver)"
    again = client.post(f"/v1/plans/{pid}/decision", json={"decision": "deny"},
                        headers=bearer("approver"))
    assert again.status_code == 409
    missing = client.get("/v1/plans/nope.1", headers=bearer("viewer"))
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


def test_raft_status_before_and_after_a_poll(sim, key_prefix):
    d = Driver(remediation_config(key_prefix, sim))
    client = create_app(d.settings).test_client()
    before = client.get("/v1/raft", headers=bearer("viewer")).get_json()
    assert before == {"polled": False, "at": None, "leader": None, "servers": [], "findings": []}
    try:
        run_raft_check(d.rt, d.one)
    finally:
        d.rt.redis.delete(d.settings.task_queue)  # events it recorded, with no worker here
    after = client.get("/v1/raft", headers=bearer("viewer")).get_json()
    assert after["polled"] is True and after["leader"] is not None
    assert len(after["servers"]) == 3 and after["findings"] == []
    assert client.get("/v1/raft").status_code == 401
