import hashlib
import hmac

import pytest

from gateway.domain import signing
from gateway.errors import BadInput

BODY = b'{"resource":"HOST","id":7}'
NOW = 1_764_090_000.0
KEYS = {"fe1": [b"old-key", b"new-key"], "fe2": [b"other"]}


def check(frontend="fe1", timestamp=None, sig=None, body=BODY, keys=KEYS, now=NOW, window=300):
    timestamp = str(int(NOW)) if timestamp is None else timestamp
    sig = signing.signature(b"new-key", timestamp, body) if sig is None else sig
    return signing.verify(frontend=frontend, timestamp=timestamp, signature_header=sig, body=body,
                          keys=keys, now=now, window=window)


def reason(**kw) -> BadInput:
    with pytest.raises(BadInput) as err:
        check(**kw)
    assert err.value.status == 401
    return err.value


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(b"k", b"123." + BODY, hashlib.sha256).hexdigest()
    assert signing.signature(b"k", 123, BODY) == "sha256=" + expected


def test_a_correctly_signed_request_names_its_front_end():
    assert check() == "fe1"


@pytest.mark.parametrize("key", [b"old-key", b"new-key"])
def test_every_key_of_a_rotation_is_accepted(key):
    ts = str(int(NOW))
    assert check(sig=signing.signature(key, ts, BODY)) == "fe1"


def test_a_key_of_another_front_end_is_refused():
    ts = str(int(NOW))
    err = reason(sig=signing.signature(b"other", ts, BODY))
    assert err.error == "bad_signature" and "fe1" in err.detail


def test_a_changed_body_breaks_the_signature():
    ts = str(int(NOW))
    assert reason(sig=signing.signature(b"new-key", ts, BODY), body=BODY + b" ").error == "bad_signature"


def test_missing_headers_are_named():
    err = reason(frontend=None, sig="")
    assert err.error == "unsigned"
    assert "X-OneHA-Frontend" in err.detail and "X-OneHA-Signature" in err.detail


def test_an_unknown_front_end_is_refused_with_the_config_key_to_set():
    err = reason(frontend="fe9")
    assert err.error == "unknown_frontend" and "ingest.frontends.fe9.keys" in err.detail


@pytest.mark.parametrize("offset,word", [(-301, "past"), (301, "future")])
def test_timestamps_outside_the_window_are_refused(offset, word):
    ts = str(int(NOW) + offset)
    err = reason(timestamp=ts, sig=signing.signature(b"new-key", ts, BODY))
    assert err.error == "stale_timestamp" and word in err.detail and "±300s" in err.detail


@pytest.mark.parametrize("offset", [-300, 300])
def test_the_window_edges_are_inside(offset):
    ts = str(int(NOW) + offset)
    assert check(timestamp=ts, sig=signing.signature(b"new-key", ts, BODY)) == "fe1"


@pytest.mark.parametrize("ts", ["12.5", "-5", "abc", "9" * 20])
def test_malformed_timestamps_are_refused(ts):
    assert reason(timestamp=ts).error == "bad_signature"


@pytest.mark.parametrize("sig", ["md5=abc", "deadbeef", "sha256=" + "0" * 64, "sha256=é"])
def test_malformed_or_wrong_signatures_are_refused(sig):
    assert reason(sig=sig).error == "bad_signature"


def test_front_end_names_are_restricted():
    assert reason(frontend="fe1\r\nX: y").error == "bad_signature"
