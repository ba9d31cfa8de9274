"""Plain text that stays in its place: one clean line, and a table of such lines.

Used by the messages (mail and chat bodies) and by the CLI: a name that holds a newline, a bidi
override or 10 KB cannot break a line, a mail header or a column.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable

DEFAULT_LIMIT = 120


def clean_text(value: Any, limit: int = DEFAULT_LIMIT) -> str:
    """One safe line: control/format characters (newlines, bidi overrides, NUL) become spaces,
    runs of whitespace collapse, and the result is cut to `limit` with an ellipsis."""
    text = "" if value is None else str(value)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
                   for ch in text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text


def text_table(headers: Iterable[str], rows: Iterable[Iterable[Any]], indent: str = "  ",
               max_width: int = 60, rule: bool = True) -> str:
    """A left-aligned plain-text table, a `----` rule under the headers unless `rule=False`;
    cells are cut to `max_width` so one long name cannot push the other columns off screen."""
    headers = [clean_text(h, max_width) for h in headers]
    body = [[clean_text(c, max_width) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body if i < len(r)])
              for i, h in enumerate(headers)]
    ruler = [["-" * w for w in widths]] if rule else []
    return "\n".join(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in [headers, *ruler, *body])
