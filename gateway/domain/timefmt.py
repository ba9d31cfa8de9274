"""How oneha writes a moment and a length of time, everywhere: messages, console, CLI, reasons.

`utc(ts)` writes unix seconds as `2026-11-25T17:45:16Z`; `duration(seconds)` writes `1h 02m 05s`.
Both read numbers and numeric strings (Redis answers in strings) and write `-` for anything else,
so a template or a table never shows `None`.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

UNKNOWN = "-"


def _seconds(value: Any) -> float | None:
    """A number, or a number in a string (Redis hands back strings); None when not one."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def utc(ts: Any) -> str:
    """Unix seconds → `2026-11-25T17:45:16Z`; '-' when unknown (0 is a time never set)."""
    seconds = _seconds(ts)
    if not seconds:
        return UNKNOWN
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):  # out of datetime's range
        return UNKNOWN


def duration(seconds: Any) -> str:
    """`3725` → `1h 02m 05s`, `90` → `1m 30s`, `2` → `2s`; '-' when unknown."""
    value = _seconds(seconds)
    if value is None:
        return UNKNOWN
    s = int(round(max(value, 0)))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if d:
        return f"{d}d {h:02d}h {m:02d}m"
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"
