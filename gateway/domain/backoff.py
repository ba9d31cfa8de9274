"""Exponential backoff, written once: delivery retries and remediation retries both wait by it."""

from __future__ import annotations


def backoff_delay(attempt: int, base: float, maximum: float) -> float:
    """The wait after failed attempt `attempt` (1-based): base, 2·base, 4·base, … never more
    than `maximum`."""
    exponent = min(max(attempt - 1, 0), 64)  # 2**64 · base is past any cap; keeps the float finite
    return float(min(base * 2.0 ** exponent, maximum))
