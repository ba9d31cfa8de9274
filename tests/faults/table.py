"""The fault table: one row per fault test, printed at the end of the session (conftest.py).

A row is only added once its test measured it; the columns are what issue 10 asks to see."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Row:
    fault: str
    sent: int  # events the senders were given
    acknowledged: int  # answered 2xx (or spooled by the real sender and flushed later)
    notified: int  # messages the receivers accepted
    lost: int  # acknowledged events that never reached their incident (or were kept as failed)
    doubled: int  # messages a receiver got twice
    actions_doubled: int | None = None  # VMs acted on twice in OpenNebula (None: no remediation)


ROWS: list[Row] = []
HEADERS = ("fault", "events sent", "acknowledged", "notified", "lost", "doubled",
           "remediation actions doubled")


def render(rows: list[Row]) -> str:
    cells = [HEADERS] + [tuple("-" if v is None else str(v)
                               for v in (getattr(r, f.name) for f in fields(Row))) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    line = lambda c: "| " + " | ".join(v.ljust(w) for v, w in zip(c, widths)) + " |"  # noqa: E731
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *map(line, cells[1:])])
