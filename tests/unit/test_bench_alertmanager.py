"""bench/alertmanager.py reads what each system told the sink, and judges the storm from it: a
misread message would make the benchmark pass or fail for the wrong reason. The payloads below are
shaped as Alertmanager 0.25's webhook and oneha's chat message (apprise json://) sent them in a
run of the bench."""

import importlib.util
from pathlib import Path

import pytest

from simulator.sinks import ChatPost

PATH = Path(__file__).resolve().parents[2] / "bench" / "alertmanager.py"


@pytest.fixture(scope="module")
def am():
    spec = importlib.util.spec_from_file_location("bench_alertmanager_under_test", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def am_payload(host: str, vms: list[str], with_host_alert: bool = True) -> dict:
    alerts = ([{"status": "firing", "labels": {"alertname": "HostError", "host": host}}]
              if with_host_alert else [])
    alerts += [{"status": "firing", "labels": {"alertname": "VmUnknown", "host": host, "vm": vm}}
               for vm in vms]
    return {"receiver": "sink", "status": "firing", "alerts": alerts,
            "groupLabels": {"host": host}, "commonLabels": {"host": host}, "version": "4"}


def oneha_chat(host: str, count: int, names: list[str]) -> dict:
    more = f" and {count - len(names)} more" if count > len(names) else ""
    return {"version": "1.0", "type": "failure",
            "title": f"[FIRING] Host {host} is in ERROR — {count} VMs affected",
            "message": f"HOST {host} (#0) is in ERROR (cluster production) since "
                       f"2026-11-30T03:28:08Z (1s).\n{count} affected: {', '.join(names)}{more}.\n"
                       "Next: oneha plans a recovery; `oneha ack host-0-2bf50e91` stops the "
                       "reminders — http://127.0.0.1:4/incidents/host-0-2bf50e91"}


def test_storm_order_is_each_host_then_its_vms(am):
    storm = am.Storm(2, 2)
    assert storm.order() == [(0, None), (0, 0), (0, 1), (1, None), (1, 0), (1, 1)]
    assert storm.events == 6
    assert storm.vm_names() == {"bhost00": {"bvm00-000", "bvm00-001"},
                                "bhost01": {"bvm01-000", "bvm01-001"}}


def test_an_alertmanager_message_names_the_vms_of_its_alerts(am):
    told = am.told_alertmanager(5.0, am_payload("bhost03", ["bvm03-000", "bvm03-001"]))
    assert (told.at, told.host, told.names, told.count) == (5.0, "bhost03",
                                                            {"bvm03-000", "bvm03-001"}, 2)


def test_a_oneha_message_gives_its_host_names_and_count(am):
    told = am.told_oneha(1.0, oneha_chat("bhost01", 50, ["bvm01-000", "bvm01-001", "bvm01-002"]))
    assert told.host == "bhost01"  # not read out of "bvm01-000"
    assert told.names == {"bvm01-000", "bvm01-001", "bvm01-002"}
    assert told.count == 50


def test_a_message_covers_its_host_when_it_names_or_counts_every_vm(am):
    vms = {f"bvm01-{v:03d}" for v in range(50)}
    counted = am.told_oneha(1.0, oneha_chat("bhost01", 50, ["bvm01-000", "bvm01-001"]))
    assert am.covers(counted, vms, strict_names=False)
    assert not am.covers(counted, vms, strict_names=True)
    short = am.told_oneha(1.0, oneha_chat("bhost01", 32, ["bvm01-000"]))
    assert not am.covers(short, vms, strict_names=False)
    stranger = am.told_oneha(1.0, oneha_chat("bhost01", 50, ["bvm02-000"]))
    assert not am.covers(stranger, vms, strict_names=False)
    named = am.told_alertmanager(1.0, am_payload("bhost01", sorted(vms)))
    assert am.covers(named, vms, strict_names=True)


def test_percentile_is_nearest_rank(am):
    assert am.percentile([3.0, 1.0, 2.0], 0.99) == 3.0
    assert am.percentile(list(range(1, 101)), 0.99) == 99
    assert am.percentile([1.0] * 10 + [9.0], 0.5) == 1.0


def test_a_storm_is_judged_from_first_messages_and_the_acks(am):
    storm = am.Storm(2, 2)
    n = storm.events
    sent = am.Sent(send=[10.0 + i * 0.1 for i in range(n)], ack=[10.05 + i * 0.1 for i in range(n)],
                   status=[202] * n, reconnects=0)
    posts = [(12.0, ChatPost("/p", {}, am_payload("bhost00", ["bvm00-000", "bvm00-001"]))),
             (13.0, ChatPost("/p", {}, am_payload("bhost01", ["bvm01-000"]))),
             (14.0, ChatPost("/p", {}, am_payload("bhost01", ["bvm01-000", "bvm01-001"]))),
             (14.5, ChatPost("/p", {}, am_payload("bhost95", [])))]  # warm-up: not the storm's
    res = am.analyse(am.Alertmanager, storm, sent, posts, strict_names=False)
    assert res.first == 2 and res.duplicates == 1 and res.missing == []
    assert res.incomplete == ["bhost01"]  # its first message lacked bvm01-001
    assert res.all_hosts_s == pytest.approx(13.0 - 10.0)
    # bhost00's last event (index 2) was acknowledged at 10.25, bhost01's (5) at 10.55
    assert res.p99_s == pytest.approx(max(12.0 - 10.25, 13.0 - 10.55))
    assert res.accepted_s == pytest.approx(n / (10.55 - 10.0))
    assert not res.error


def test_a_host_never_told_leaves_no_timing(am):
    storm = am.Storm(2, 0)
    sent = am.Sent(send=[1.0, 1.1], ack=[1.01, 1.11], status=[202, 500], reconnects=0)
    posts = [(3.0, ChatPost("/p", {}, am_payload("bhost00", [])))]
    res = am.analyse(am.Alertmanager, storm, sent, posts, strict_names=False)
    assert res.missing == ["bhost01"] and res.all_hosts_s is None and res.p99_s is None
    assert "500" in res.error


def test_targets_are_judged_on_the_timed_storm(am):
    storm = am.Storm(20, 100)
    fast = am.Result("Alertmanager", storm, all_hosts_s=1.5, p99_s=1.0, first=20)
    slow = am.Result("oneha", storm, all_hosts_s=3.0, p99_s=1.9, first=20)
    verdicts = dict(am.verdicts([fast, slow], {"oneha": [1.1]}))
    assert [ok for text, ok in verdicts.items() if "oneha/Alertmanager" in text] == [False]
    assert [ok for text, ok in verdicts.items() if "per-host p99" in text] == [True]
    assert [ok for text, ok in verdicts.items() if "at rest" in text] == [True]
    good = am.Result("oneha", storm, all_hosts_s=2.2, p99_s=1.9, first=20)
    assert all(dict(am.verdicts([fast, good], {"oneha": [1.1]})).values())
    dup = am.Result("oneha", storm, all_hosts_s=2.2, p99_s=1.9, first=20, duplicates=1)
    assert not all(dict(am.verdicts([fast, dup], {})).values())


def test_a_message_group_interval_after_the_first_is_news_not_a_duplicate(am):
    storm = am.Storm(1, 2)
    sent = am.Sent(send=[1.0, 1.1, 1.2], ack=[1.05, 1.15, 1.25], status=[202] * 3, reconnects=0)
    first = oneha_chat("bhost00", 1, ["bvm00-000"])
    full = oneha_chat("bhost00", 2, ["bvm00-000", "bvm00-001"])
    posts = [(3.0, ChatPost("/p", {}, first)), (3.0 + am.GROUP_INTERVAL, ChatPost("/p", {}, full))]
    res = am.analyse(am.Oneha, storm, sent, posts, strict_names=False)
    assert (res.first, res.duplicates, res.updates, res.messages) == (1, 0, 1, 2)
    assert res.incomplete == ["bhost00"]  # the first message is judged, not the later one
    soon = posts[:1] + [(4.0, ChatPost("/p", {}, full))]
    res = am.analyse(am.Oneha, storm, sent, soon, strict_names=False)
    assert (res.duplicates, res.updates) == (1, 0)


def test_ratios_pair_the_two_systems_of_one_repetition(am):
    storm = am.Storm(20, 100)
    runs = [am.Result("Alertmanager", storm, all_hosts_s=1.0, p99_s=1.0, first=20, rep=0),
            am.Result("Alertmanager", storm, all_hosts_s=2.0, p99_s=1.0, first=20, rep=1),
            am.Result("oneha", storm, all_hosts_s=1.4, p99_s=1.5, first=20, rep=0),
            am.Result("oneha", storm, all_hosts_s=2.9, p99_s=1.5, first=20, rep=1)]
    verdicts = am.verdicts(runs, {})
    [(text, ok)] = [v for v in verdicts if "oneha/Alertmanager" in v[0]]
    assert ok and "1.42" in text  # median of 1.40 and 1.45; 2.9 / 1.0 would have missed
