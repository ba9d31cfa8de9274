"""The dead man's switch reads like a table: heartbeats, refused keys, the drill hook and the
last drill → findings with their reasons; and drills route to the drill receiver only."""

from gateway.config import settings_from_dict
from gateway.domain import drills
from gateway.domain.routing import match_routes

CFG = drills.DrillConfig(heartbeat_interval=60, missed_heartbeats=2, timeout=30, heartbeats="all")


def watch(**kw):
    base = dict(now=1000.0, frontends=["fe1", "fe2"], heartbeats={}, bad_keys={},
                hook_present=True, cfg=CFG, started=900.0)
    return drills.Watch(**{**base, **kw})


def firing(findings):
    return {f.key: f.condition for f in findings if f.firing}


def test_all_well_means_no_firing_finding():
    w = watch(heartbeats={"fe1": {"at": 990.0}, "fe2": {"at": 950.0}},
              drills=[{"id": "a" * 16, "sent_at": 900.0, "reached_at": 901.0, "frontend": "fe1"}])
    assert firing(drills.assess(w)) == {}


def test_silence_longer_than_the_missed_intervals_fires_never_heard_counts_from_the_start():
    w = watch(heartbeats={"fe1": {"at": 879.0}})
    assert firing(drills.assess(w)) == {"heartbeat/fe1": "HEARTBEAT/MISSING"}  # 121 s > 120 s
    assert firing(drills.assess(watch(started=700.0))) == {
        "heartbeat/fe1": "HEARTBEAT/MISSING", "heartbeat/fe2": "HEARTBEAT/MISSING"}
    (f,) = [f for f in drills.assess(w) if f.firing]
    assert "oneha-hook --flush" in f.summary and f.frontend == "fe1"


def test_seen_watches_only_front_ends_heard_from_once_and_off_none():
    seen = drills.DrillConfig(heartbeat_interval=60, heartbeats="seen")
    w = watch(cfg=seen, heartbeats={"fe1": {"at": 500.0}}, started=0.0)  # fe2 never heard
    assert firing(drills.assess(w)) == {"heartbeat/fe1": "HEARTBEAT/MISSING"}
    off = watch(cfg=drills.DrillConfig(heartbeats="off"), heartbeats={"fe1": {"at": 0.0}})
    assert [f.key for f in drills.assess(off)] == ["drill/hook"]


def test_a_refused_key_fires_until_a_good_heartbeat_comes_after_it():
    bad = {"fe2": {"at": 995.0, "count": 3}}
    w = watch(heartbeats={"fe1": {"at": 990.0}, "fe2": {"at": 990.0}}, bad_keys=bad)
    assert firing(drills.assess(w)) == {"key/fe2": "HEARTBEAT/KEY_MISMATCH"}
    (f,) = [f for f in drills.assess(w) if f.firing]
    assert "3 refused" in f.summary and "ingest.frontends.fe2.keys" in f.summary
    fixed = watch(heartbeats={"fe1": {"at": 990.0}, "fe2": {"at": 999.0}}, bad_keys=bad)
    assert firing(drills.assess(fixed)) == {}
    # refused for long: silent too, but the key is the one cause told
    long_ago = watch(heartbeats={"fe1": {"at": 990.0}, "fe2": {"at": 500.0}}, bad_keys=bad)
    assert firing(drills.assess(long_ago)) == {"key/fe2": "HEARTBEAT/KEY_MISMATCH"}


def test_a_missing_hook_and_a_drill_that_did_not_come_back_fire():
    w = watch(heartbeats={"fe1": {"at": 990.0}, "fe2": {"at": 990.0}}, hook_present=False,
              drills=[{"id": "b" * 16, "sent_at": 960.0},  # 40 s > timeout 30 s
                      {"id": "a" * 16, "sent_at": 900.0, "reached_at": 901.0}])
    assert firing(drills.assess(w)) == {"drill/hook": "DRILL/HOOK_MISSING",
                                        "drill/reached": "DRILL/NOT_REACHED"}
    pending = watch(heartbeats={"fe1": {"at": 990.0}, "fe2": {"at": 990.0}},
                    drills=[{"id": "b" * 16, "sent_at": 990.0},  # still within its timeout
                            {"id": "a" * 16, "sent_at": 900.0, "reached_at": 901.0}])
    assert firing(drills.assess(pending)) == {}


def test_finding_events_keep_their_id_while_firing_and_resolve_once():
    f = drills.Finding("heartbeat/fe1", "HEARTBEAT/MISSING", True, "silent", "fe1")
    a, b = drills.finding_event(f, "ep1", 1.0), drills.finding_event(f, "ep1", 2.0)
    assert a.event_id == b.event_id and a.object_key == "alertpath:heartbeat/fe1"
    ok = drills.finding_event(drills.Finding(f.key, f.condition, False, "back", "fe1"), "ep1", 3)
    assert ok.status == "resolved" and ok.event_id != a.event_id
    assert ok.condition == "HEARTBEAT/OK"


def test_the_drill_id_is_read_from_the_call_info():
    info = '<VALUE>ONEHA_DRILL = "0123456789abcdef"</VALUE>'
    assert drills.drill_id_from_call_info(info) == "0123456789abcdef"
    assert drills.drill_id_from_call_info("<VALUE>COMMAND=x</VALUE>") is None


def test_drill_objects_reach_the_drill_receiver_only_whatever_the_routes_say():
    s = settings_from_dict({
        "receivers": [{"name": "ops", "urls": ["json://a"]}, {"name": "pager", "urls": ["json://b"]},
                      {"name": "drill", "urls": ["json://c"]}],
        "route": {"routes": [{"matchers": ["severity=~.*"], "receiver": "pager",
                              "continue": True}]},
        "drills": {"receiver": "drill"}}, env={})
    names = [r.name for r in s.receivers]
    event = drills.drill_event("0123456789abcdef", "fe1", "oneha-drill", 1.0)
    (m,) = match_routes(s.route, event.labels, names)
    assert m.receivers == ("drill",) and m.group_wait == 0
    # the root's "every receiver" is every receiver people read
    assert s.route.receivers == ["ops", "pager"]
    assert [m.receivers for m in match_routes(s.route, {"resource": "HOST"}, names)] == [
        ("pager",)]  # the operator's routes as they were
    nobody = settings_from_dict({"receivers": [{"name": "ops", "urls": ["json://a"]}]}, env={})
    (m,) = match_routes(nobody.route, event.labels, ["ops"])
    assert m.receivers == ()  # no drill receiver configured: a drill pages nobody
