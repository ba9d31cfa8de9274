"""A step's outcome, read from the record the remediation store keeps (no I/O)."""

import pytest

from gateway.domain.remediation.outcomes import NOT_ACTED, StepOutcome, outcomes_from


def test_a_step_without_a_record_is_not_acted_yet_and_on_its_first_attempt():
    assert NOT_ACTED.status is None and NOT_ACTED.pending and NOT_ACTED.attempt == 1
    assert StepOutcome.from_dict(None) == StepOutcome.from_dict({}) == NOT_ACTED
    assert NOT_ACTED.to_dict() == {}


def test_the_record_goes_back_to_the_store_exactly_as_it_came_unknown_keys_included():
    record = {"status": "running", "detail": "RUNNING on node02", "at": 12.5, "attempt": 2,
              "action": "resched", "acted_at": 10.0, "running_at": 12.5, "host_after": "node02",
              "settled": True}
    out = StepOutcome.from_dict(record)
    assert out.to_dict() == record and out.to_dict() is not record
    assert (out.status, out.attempt, out.action, out.running_at) == ("running", 2, "resched", 12.5)


@pytest.mark.parametrize("status, pending, gave_up, clears_dependents", [
    (None, True, False, False),
    ("acting", True, False, False),
    ("done", False, False, True),
    ("skipped", False, False, True),
    ("failed", False, True, False),
    ("needs_human", False, True, False),
    ("retry_wait", False, False, False),
    ("running", False, False, False),
])
def test_what_a_status_means_for_the_step_and_the_steps_after_it(status, pending, gave_up,
                                                                 clears_dependents):
    out = StepOutcome.from_dict({"status": status})
    assert (out.pending, out.gave_up, out.clears_dependents) == (pending, gave_up,
                                                                  clears_dependents)


@pytest.mark.parametrize("record, since", [
    ({"acted_at": 10.0, "at": 11.0}, 10.0),  # the call's time, not the record's
    ({"at": 11.0}, 11.0),  # settled or refreshed by another plan: the record's time
    ({}, 99.0),  # nothing known: now
])
def test_the_verify_timeout_counts_from_the_action(record, since):
    assert StepOutcome.from_dict(record).since(99.0) == since


def test_the_stores_records_by_step_key():
    outs = outcomes_from({"vm:1:resched": {"status": "done", "attempt": 3}})
    assert outs["vm:1:resched"].attempt == 3
    assert outs.get("vm:2:resched", NOT_ACTED).pending
