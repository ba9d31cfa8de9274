"""A request body as a JSON object within limits: table-driven, no I/O."""

import time

import pytest

from gateway.domain.approvals import ApprovalRefused, verify
from gateway.domain.json_bodies import MAX_DEPTH, parse_json_object
from gateway.errors import BadInput


def nested(depth: int) -> bytes:
    return b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_nesting_up_to_the_limit_is_read():
    value = parse_json_object(nested(MAX_DEPTH))["a"]
    depth = 2  # the object and its array
    while value:
        depth, value = depth + 1, value[0]
    assert depth == MAX_DEPTH


@pytest.mark.parametrize("body,expected", [
    (b'{"s": "' + b"[" * 1000 + b'"}', {"s": "[" * 1000}),  # brackets in a string are text
    (b'{"s": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\\", "t": 1}',
     {"s": '"' + "[" * 35 + "\\", "t": 1}),  # escaped quotes and backslashes
    (b'{"n": 1.5e300, "m": -0.0, "k": 2147483647}', {"n": 1.5e300, "m": -0.0, "k": 2147483647}),
    ('{"who": "Jo\u00e3o"}'.encode(), {"who": "Jo\u00e3o"}),
])
def test_bodies_within_the_limits_are_read(body, expected):
    assert parse_json_object(body) == expected


@pytest.mark.parametrize("body,words", [
    (nested(MAX_DEPTH + 1), "more than 32 deep"),
    (b"[" * 100_000 + b"]" * 100_000, "more than 32 deep"),
    (b"[" * 100_000, "more than 32 deep"),  # not even closed
    (b'{"a": "x", "b": ' + b"{" * 40 + b'"' + b"}" * 40, "more than 32 deep"),
    (b'{"x": NaN}', "NaN is not a JSON number"),
    (b'{"x": -Infinity}', "-Infinity is not a JSON number"),
    (b'{"x": 1e999}', "beyond a float"),
    (b'{"x": ' + b"9" * 5000 + b"}", "not valid UTF-8 JSON"),  # Python's int digit limit
    ('{"x": 1}'.encode("utf-16"), "not valid UTF-8 JSON"),
    (b"[1]", "JSON object, got list"),
])
def test_bodies_beyond_the_limits_are_bad_json(body, words):
    with pytest.raises(BadInput) as err:
        parse_json_object(body)
    assert err.value.error == "bad_json" and err.value.status == 400
    assert words in err.value.detail, err.value.detail


def test_a_wide_body_of_many_shallow_objects_is_read_quickly():
    body = b'{"alerts": [' + b",".join([b'{"labels": {"a": "b"}}'] * 10_000) + b"]}"
    started = time.perf_counter()
    assert len(parse_json_object(body)["alerts"]) == 10_000
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("token", ["eyJhIjoiYXAxIn0.\u00e9\u00e9", "\u00e9.\u00e9", "\ud800.x"])
def test_an_approval_token_that_is_not_ascii_is_malformed(token):
    with pytest.raises(ApprovalRefused) as err:
        verify("secret", token, now=0.0)
    assert err.value.code == "malformed"
