"""One exponential backoff for delivery and remediation retries."""

from gateway.domain.backoff import backoff_delay


def test_backoff_doubles_from_the_base_up_to_the_cap():
    assert [backoff_delay(a, 10, 600) for a in range(1, 9)] == [10, 20, 40, 80, 160, 320, 600, 600]
    assert backoff_delay(1, 0.05, 0.2) == 0.05 and backoff_delay(3, 0.05, 0.2) == 0.2


def test_the_first_attempt_waits_the_base_and_a_huge_attempt_waits_the_cap():
    assert backoff_delay(0, 5, 60) == 5.0
    assert backoff_delay(10_000, 5, 60) == 60.0
