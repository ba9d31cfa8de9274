"""One way to write a moment and a length of time, for messages, console and CLI alike."""

import pytest

from gateway.domain.timefmt import duration, utc

T0 = 1764090000.0  # 2025-11-25T17:00:00Z


def test_moments_are_written_in_utc_iso_8601():
    assert utc(T0) == utc(int(T0)) == utc(str(T0)) == "2025-11-25T17:00:00Z"


def test_lengths_of_time_name_their_two_largest_units():
    assert [duration(s) for s in (0, 59.6, 61, 3725, 90061, "600", -5)] == [
        "0s", "1m 00s", "1m 01s", "1h 02m 05s", "1d 01h 01m", "10m 00s", "0s"]


@pytest.mark.parametrize("value", [None, "", "soon", True, float("nan"), float("inf")])
def test_what_is_not_a_time_is_written_as_a_dash(value):
    assert utc(value) == duration(value) == "-"


def test_a_moment_never_set_or_out_of_range_is_a_dash():
    assert utc(0) == utc(1e300) == "-"
