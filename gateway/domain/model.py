"""Building blocks of the typed, strict configuration models.

The domain owns its configuration sections (`route`, `inhibit_rules`, `remediation`) and
gateway/config.py assembles them into `Settings`; both build on these, so the domain never has
to import gateway.config.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """`30`, `30s`, `1.5m`, `250ms`, `2h` -> seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"expected a duration like 30s, 5m, 250ms or 1h, got {value!r}")


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    """Unknown keys are errors (a typo is caught at start-up); values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
