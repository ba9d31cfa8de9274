"""How `oneha` commands print a list: one line per item under a header, or a sentence saying
there is nothing (never an empty screen)."""

from __future__ import annotations

from typing import Callable, Iterable, TypeVar

import click

T = TypeVar("T")


def echo_list(items: Iterable[T], empty: str, line: Callable[[T], str],
              header: str | None = None) -> None:
    items = list(items)
    if not items:
        click.echo(empty)
        return
    if header:
        click.echo(header)
    for item in items:
        click.echo(line(item))
