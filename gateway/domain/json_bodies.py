"""A request body as a JSON object, within limits (pure): whatever a client sends is read or
refused with `BadInput("bad_json")` — never a crash.

Python's json module recurses once per level of nesting, so `[` x 100000 would end in a
RecursionError (a 500): the nesting depth is measured on the bytes before parsing, in C-speed
passes (a body with at most `MAX_DEPTH` brackets in all needs no more). The size is limited
before this, where the body is read (werkzeug answers 413 past `ingest.max_body_bytes`). The
text must be UTF-8 (RFC 8259), and NaN, Infinity and numbers beyond a float are refused: they are
not JSON, and would travel on as values nothing else can compare or store.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from ..errors import BadInput

MAX_DEPTH = 32  # arrays and objects within each other; oneha's own bodies need 4 at most
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a JSON string
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


def parse_json_object(body: bytes, like: str = "") -> dict[str, Any]:
    """The body as a JSON object, or `BadInput("bad_json")` saying what is wrong with it;
    `like` is an example shown when the body is JSON but not an object."""
    if _deeper_than(body, MAX_DEPTH):
        raise BadInput("bad_json", f"body nests arrays and objects more than {MAX_DEPTH} deep")
    try:
        data = _DECODER.decode(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput("bad_json", f"body is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        example = f" like {like}" if like else ""
        raise BadInput("bad_json", f"body must be a JSON object{example}, got {type(data).__name__}")
    return data


def _deeper_than(body: bytes, limit: int) -> bool:
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        if byte in _OPENING:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _not_json(constant: str):
    raise ValueError(f"{constant} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is beyond a float")
    return value


_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)  # built once: ~4 µs
