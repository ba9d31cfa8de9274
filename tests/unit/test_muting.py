"""Silences, inhibition and maintenance decide what is recorded but not sent (pure)."""

import pytest

from gateway.domain.muting import OpenIncident, SilenceError, mute, new_silence
from gateway.domain.routing import DEFAULT_INHIBIT_RULES

T0 = 1_764_000_000.0
VM = {"resource": "VM", "host": "node07", "name": "web1"}
HOST = {"resource": "HOST", "host": "node07", "name": "node07"}


def silence(matchers=("host=node07",), start=T0, end=T0 + 3600):
    return new_silence(matchers, start, end, "alice", "kernel upgrade", now=T0)


def test_vm_alert_is_inhibited_while_its_host_incident_is_open():
    m = mute("vm-1", VM, T0, [], [OpenIncident("host-7", HOST)], DEFAULT_INHIBIT_RULES)
    assert m.muted and m.by == "inhibited:host-7" and "host=node07" in m.reason


def test_vm_on_another_host_is_not_inhibited():
    other = {**VM, "host": "node08"}
    assert not mute("vm-1", other, T0, [], [OpenIncident("host-7", HOST)], DEFAULT_INHIBIT_RULES)


def test_active_silence_mutes_with_author_and_comment_in_the_reason():
    m = mute("vm-1", VM, T0 + 10, [silence()], [], DEFAULT_INHIBIT_RULES)
    assert m.muted and "alice: kernel upgrade" in m.reason and m.by.startswith("silence:")


@pytest.mark.parametrize("now", [T0 - 1, T0 + 3600])
def test_silence_is_only_active_between_start_and_end(now):
    s = new_silence(["host=node07"], T0, T0 + 3600, "alice", "x", now=T0 - 10)
    assert not mute("vm-1", VM, now, [s], [], DEFAULT_INHIBIT_RULES)
    assert s.state(now) in ("pending", "expired")


def test_maintenance_label_mutes_first():
    m = mute("vm-1", {**VM, "maintenance": "true"}, T0, [silence()], [], DEFAULT_INHIBIT_RULES)
    assert m.by == "maintenance"


@pytest.mark.parametrize("kwargs,field", [
    ({"matchers": []}, "matchers"),
    ({"matchers": ["host=~("]}, "matchers"),
    ({"author": " "}, "author"),
    ({"comment": ""}, "comment"),
    ({"end": T0 - 5}, "ends_at"),
])
def test_bad_silences_are_refused_naming_the_field(kwargs, field):
    args = {"matchers": ["host=node07"], "start": T0 - 10, "end": T0 + 60, "author": "alice",
            "comment": "why"}
    args.update(kwargs)
    with pytest.raises(SilenceError, match=field):
        new_silence(args["matchers"], args["start"], args["end"], args["author"], args["comment"],
                    now=T0)


def test_silence_round_trips_through_json_dict():
    from gateway.domain.muting import Silence
    s = silence(matchers=('host=~"node0[0-9]"', "resource!=HOST"))
    assert Silence.from_dict(s.to_dict()) == s
