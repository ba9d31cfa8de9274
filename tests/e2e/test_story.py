"""The story people are told is true and in order — asserted on what each receiver got.

Real processes throughout (tests/support/stack.py): the simulator runs oneha's hooks with the
real sender, `oneha serve` under gunicorn, `oneha worker`, `oneha beat`, the machine's Redis, a
real SMTP server and a real chat receiver. The configuration is the demo's (the defaults, with
short timings): `disable_failed_host` on, grouping by host, grace of two monitoring cycles.
"""

from __future__ import annotations

import time

import pytest

from simulator import CloudSpec, HostSpec, VmSpec
from tests.support.stack import Stack

pytestmark = pytest.mark.slow

RECEIVERS = ("mail", "chat")


def host_of_25() -> CloudSpec:
    hosts = [HostSpec(f"node0{i}", cpu=3200, memory_mb=131072) for i in (1, 2, 3)]
    vms = [VmSpec(f"app-{i:02d}", "node01", memory_mb=1024) for i in range(25)]
    vms += [VmSpec("web-x", "node02"), VmSpec("web-y", "node03")]
    return CloudSpec(hosts=hosts, vms=vms, frontends=3, monitoring_interval=0.5, boot_time=0.5,
                     prolog_time=0.2, epilog_time=0.1, sched_interval=0.3)


def watch_the_failure(stack: Stack, host: str = "node01"):
    """Crash `host`; return its VMs' ids and a probe that notes when they all run elsewhere."""
    victim = next(h for h in stack.sim.hosts() if h["name"] == host)
    ids = list(victim["vm_ids"])
    back: dict[str, float] = {}

    def all_back() -> bool:
        if "at" not in back and stack.running_elsewhere(ids, victim["id"]):
            back["at"] = time.time()
        return "at" in back

    stack.sim.crash_host(victim["id"])
    return victim, ids, all_back, back


def assert_one_true_story(stack: Stack, names: list[str], back: dict, host: str = "node01"):
    for receiver in RECEIVERS:
        told = stack.told(receiver)
        kinds = [t.kind for t in told]
        # [FIRING] first; the resolve notice last, and only once every VM ran again.
        assert kinds[0] == "FIRING", (receiver, kinds)
        assert kinds.count("RESOLVED") == 1 and kinds[-1] == "RESOLVED", (receiver, kinds)
        resolved = told[-1]
        assert resolved.at >= back["at"], f"{receiver}: RESOLVED before every VM ran again"
        assert f"Host {host} failed — its {len(names)} VMs run again elsewhere" in resolved.title
        assert "recovered (was in" not in resolved.title  # a dead host is never "recovered"
        assert not any(k in ("NEEDS A HUMAN", "REMEDIATION FAILED") for k in kinds), kinds
    mail = stack.told("mail")
    everything = "\n".join(t.text for t in mail)
    for name in names:
        assert name in everything, f"{name} is named in no message"
    # The resolve mail shows each VM as it is now, with its impact row.
    final = mail[-1].body
    for name in names:
        assert f"{name} (#" in final
    assert "ACTIVE/UNKNOWN" not in final.split("Impact:")[0].split("Affected")[-1]
    assert "ACTIVE/RUNNING on node0" in final
    assert "notification " not in final  # no internal ids in the footer


def test_a_host_failure_in_approval_mode_tells_one_story_in_order(key_prefix, tmp_path,
                                                                  monkeypatch):
    with Stack(host_of_25(), key_prefix, tmp_path, monkeypatch, mode="approval") as stack:
        victim, ids, all_back, back = watch_the_failure(stack)
        names = [stack.sim.vm(i)["name"] for i in ids]
        token = stack.wait("the approval link", stack.approval_token, 90)
        for receiver in RECEIVERS:
            told = stack.told(receiver)
            assert told and told[0].kind == "FIRING", [t.title for t in told]
        # Nothing was done, and nobody told that anything failed, before the approval.
        assert [w for w in stack.writes() if w["method"] != "one.host.status"] == []
        assert stack.approve(token)["status"] == "executing"
        stack.wait("every VM running elsewhere", all_back, 120)
        stack.wait("the resolve message to both receivers",
                   lambda: all(any(t.kind == "RESOLVED" for t in stack.told(r))
                               for r in RECEIVERS), 60)
        assert_one_true_story(stack, names, back)
        print("\n".join(f"{t.receiver}: {t.title}" for r in RECEIVERS for t in stack.told(r)))


def test_a_host_failure_in_auto_mode_is_not_resolved_by_oneha_disabling_the_host(
        key_prefix, tmp_path, monkeypatch):
    with Stack(host_of_25(), key_prefix, tmp_path, monkeypatch, mode="auto") as stack:
        victim, ids, all_back, back = watch_the_failure(stack)
        names = [stack.sim.vm(i)["name"] for i in ids]
        stack.wait("every VM running elsewhere", all_back, 120)
        stack.wait("the resolve message to both receivers",
                   lambda: all(any(t.kind == "RESOLVED" for t in stack.told(r))
                               for r in RECEIVERS), 60)
        # oneha disabled the dead host; that was never read back as an operator's maintenance.
        disabled = [w for w in stack.writes() if w["method"] == "one.host.status"]
        assert disabled and disabled[0]["args"][:2] == [victim["id"], 1]
        assert_one_true_story(stack, names, back)
        assert not any("by an operator" in t.text for r in RECEIVERS for t in stack.told(r))


def partition_cloud() -> CloudSpec:
    hosts = [HostSpec(f"node{i:02d}", cpu=1600, memory_mb=65536) for i in range(1, 21)]
    vms = [VmSpec(f"vm{h:02d}-{k}", f"node{h:02d}") for h in range(1, 21) for k in range(2)]
    return CloudSpec(hosts=hosts, vms=vms, frontends=3, monitoring_interval=0.5, boot_time=0.5,
                     sched_interval=0.3)


def test_a_partition_is_one_message_naming_the_guard_and_nothing_is_done(key_prefix, tmp_path,
                                                                        monkeypatch):
    with Stack(partition_cloud(), key_prefix, tmp_path, monkeypatch, mode="auto") as stack:
        cut = list(range(12))
        stack.sim.partition(cut)

        def storm_told():
            return all(any("storm guard" in t.title.lower() for t in stack.told(r))
                       for r in RECEIVERS)
        stack.wait("the partition message", storm_told, 90)
        # Every host's alert too, and then quiet: long enough for plans past their grace.
        stack.wait("the 12 host alerts", lambda: all(
            sum(t.kind == "FIRING" and "Host node" in t.title for t in stack.told(r)) >= 12
            for r in RECEIVERS), 60)
        deadline = time.monotonic() + 4
        stack.wait("a quiet moment", lambda: time.monotonic() > deadline, 10)
        assert stack.writes() == [], "nothing may be done to the cloud in a partition"
        for receiver in RECEIVERS:
            told = stack.told(receiver)
            storm = [t for t in told if "storm guard" in t.title.lower()]
            assert len(storm) == 1, [t.title for t in told]
            assert "12 of 20 hosts in ERROR" in storm[0].title
            assert "storm guard: 12 of 20 hosts in ERROR (60%)" in storm[0].body
            if receiver == "mail":
                assert "node01, node02" in storm[0].body and "Check first" in storm[0].body
            assert not any(t.kind in ("NEEDS A HUMAN", "REMEDIATION FAILED") for t in told)
            assert not any("no remaining host has room" in t.text for t in told)
