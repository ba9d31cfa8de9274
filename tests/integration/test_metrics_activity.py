"""/metrics tells what oneha did, whichever process did it (counts live in Redis): messages per
receiver sent and failed, remediation steps by action and outcome, event-to-message latency, the
Raft cluster as last polled, and when each front-end was last heard from."""

from __future__ import annotations

import json
import time

from prometheus_client.parser import text_string_to_metric_families

from gateway.adapters.store.raft import RaftStore
from gateway.adapters.store.remediation import RemediationStore
from gateway.app import create_app
from gateway.config import settings_from_dict
from gateway.domain.notifications import Notification, notification_id_for
from gateway.domain.raft import (FOLLOWER, LEADER, RaftMemory, RaftRules, RaftStatus, ZoneInfo,
                                 ZoneServer, assess)
from gateway.flows.delivery import deliver_round
from gateway.runtime import Runtime
from tests.integration.test_ingest import signed_headers, vm_event

EP = [f"http://fe{i}:2633/RPC2" for i in range(3)]


def scrape(client) -> dict:
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.data
    out = {}
    for family in text_string_to_metric_families(resp.data.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def notification(seq: int, started_at: float) -> Notification:
    return Notification(notification_id_for("host-7-abc", "firing", seq, "ops"), "ops", "firing",
                        {"id": "host-7-abc", "title": "host node07 is in ERROR",
                         "started_at": started_at}, created_at=started_at)


def test_what_oneha_did_is_counted_for_every_gateway(redis_url, key_prefix, chat_sink):
    settings = settings_from_dict({
        "redis_url": redis_url, "key_prefix": key_prefix,
        "ingest": {"frontends": {"fe1": {"keys": ["new-key"]}}},
        "receivers": [{"name": "ops", "kind": "chat", "urls": [chat_sink.url()]}],
        "notify": {"max_attempts": 3, "backoff_base": "1s"}}, env={})
    rt = Runtime.from_settings(settings)
    client = create_app(settings).test_client()
    before = time.time()

    # A front-end is heard from when one of its events is accepted — not when it is refused.
    body = json.dumps(vm_event()).encode()
    assert client.post("/v1/events", data=body, headers=signed_headers(body)).status_code == 202
    forged = json.dumps(vm_event(event_id="3" * 32)).encode()
    assert client.post("/v1/events", data=forged, headers=signed_headers(
        forged, key="wrong", frontend="fe9")).status_code == 401

    # One message sent 12 s after its incident started, one attempt that failed.
    now = time.time()
    assert deliver_round(rt, notification(1, now - 12)).status == "sent"
    chat_sink.fail_next(1)
    deliver_round(rt, notification(2, now - 1))

    # Remediation: a step done (recorded twice: counted once), one failed.
    store = RemediationStore.from_runtime(rt)
    store.record("host-7-abc.1", "vm:42:resched", "acting", previous={})
    store.record("host-7-abc.1", "vm:42:resched", "done", previous={"status": "acting"})
    store.record("host-7-abc.1", "vm:42:resched", "done")
    store.record("host-7-abc.1", "disable:7", "failed", previous={"status": "acting"})

    # The Raft monitor's last poll: a leader, two followers, one 300 records behind.
    zone = ZoneInfo(0, "OpenNebula", tuple(ZoneServer(i, f"fe{i}", EP[i]) for i in range(3)))
    statuses = {EP[i]: RaftStatus(server_id=i, state=LEADER if i == 0 else FOLLOWER, term=5,
                                  voted_for=0, commit=500 - 300 * (i == 2),
                                  log_index=500 - 300 * (i == 2), log_term=5) for i in range(3)}
    rules = RaftRules(lag_threshold=100, log_retention=1000, flap_window=60, flap_count=3)
    RaftStore.of(rt).save_poll(assess(statuses, zone, rules, RaftMemory(), now=now), RaftMemory(), now)

    m = scrape(client)
    seen = m[("oneha_frontend_last_event_timestamp_seconds", (("frontend", "fe1"),))]
    assert before - 1 <= seen <= time.time() + 1
    assert m[("oneha_frontend_last_seen_timestamp_seconds", (("frontend", "fe1"),))] == seen
    assert not any(k[0] == "oneha_frontend_last_event_timestamp_seconds"
                   and ("frontend", "fe9") in k[1] for k in m), "a refused event counts nobody"
    assert m[("oneha_notifications_sent_total", (("receiver", "ops"),))] == 1
    assert m[("oneha_notifications_failed_total", (("receiver", "ops"),))] == 1
    hist = {dict(k[1])["le"]: v for k, v in m.items()
            if k[0] == "oneha_event_to_notification_seconds_bucket"
            and ("transition", "firing") in k[1]}
    assert (hist["10"], hist["30"], hist["+Inf"]) == (0, 1, 1), hist
    assert 12 <= m[("oneha_event_to_notification_seconds_sum", (("transition", "firing"),))] < 20
    assert m[("oneha_remediation_actions_total", (("action", "resched"), ("outcome", "done")))] == 1
    assert m[("oneha_remediation_actions_total",
              (("action", "disable_host"), ("outcome", "failed")))] == 1
    assert m[("oneha_raft_leader", ())] == 1
    assert m[("oneha_raft_servers", (("state", "follower"),))] == 2
    assert m[("oneha_raft_follower_lag", (("server", "fe2"),))] == 300
    assert abs(m[("oneha_raft_last_poll_timestamp_seconds", ())] - now) < 1
    assert len(chat_sink.messages) == 1
