"""Pure delivery rules: masking of receiver URLs and errors, backoff, outcome of an attempt."""

import pytest

from gateway.adapters.notifier import DeliveryError, SendResult, mask_url, scrub, url_key
from gateway.domain.notifications import DEAD, FAILED, SENT, outcome_of


@pytest.mark.parametrize("url, secret", [
    ("json://127.0.0.1:9/hook?+Authorization=Bearer%20abcdef123", "abcdef123"),
    ("json://127.0.0.1:9/hook?+X-Token=tok3nvalue", "tok3nvalue"),
    ("json://user:passw0rd99@example.com/hook", "passw0rd99"),
    ("mailto://user:mailpass77@example.com?to=ops@example.com", "mailpass77"),
    ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#ops", "TIiajkdnlazkcOXrIdevi7FQ"),
    ("tgram://123456789:AABBCCDDEEFFaabbccddeeff/12345", "AABBCCDDEEFFaabbccddeeff"),
])
def test_masked_urls_hide_secrets_but_keep_the_scheme_and_host(url, secret):
    masked = mask_url(url)
    assert secret not in masked
    assert masked.split("://")[0] == url.split("://")[0]
    assert scrub(f"POST {url} failed (token {secret})", url, masked) == \
        f"POST {masked} failed (token ****)"


def test_a_url_apprise_cannot_parse_shows_only_its_scheme():
    assert mask_url("nosuchscheme://user:secret@host/x") == "nosuchscheme://****"


def test_url_key_is_stable_and_reveals_nothing():
    url = "json://127.0.0.1/hook?+X-Token=abc123secret"
    assert url_key(url) == url_key(url) and len(url_key(url)) == 16
    assert url_key(url) != url_key(url + "x") and "abc123" not in url_key(url)


def test_a_failed_result_raises_a_delivery_error_that_says_if_retrying_helps():
    ok = SendResult(url="json://h/****", ok=True, status="SUCCESS", error="", elapsed=0.01)
    assert ok.raise_for_status() is ok
    bad = SendResult(url="x://****", ok=False, status="INVALID_URL", error="cannot parse",
                     elapsed=0.0, permanent=True)
    with pytest.raises(DeliveryError, match="cannot parse") as exc:
        bad.raise_for_status()
    assert exc.value.permanent and exc.value.result is bad


@pytest.mark.parametrize("ok, permanent, attempt, state, retry_in, reason", [
    (True, False, 1, SENT, 0, "delivered on attempt 1"),
    (True, False, 3, SENT, 0, "delivered on attempt 3"),
    (False, False, 1, FAILED, 10, "attempt 1 of 3 failed; retry in 10s"),
    (False, False, 2, FAILED, 20, "attempt 2 of 3 failed; retry in 20s"),
    (False, False, 3, DEAD, 0, "failed 3 of 3 attempts"),
    (False, True, 1, DEAD, 0, "permanent failure on attempt 1: retrying cannot help"),
])
def test_outcome_of_an_attempt(ok, permanent, attempt, state, retry_in, reason):
    out = outcome_of(ok, permanent, attempt, max_attempts=3, base=10, maximum=600)
    assert (out.state, out.retry_in, out.reason) == (state, retry_in, reason)
