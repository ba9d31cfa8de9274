"""`oneha demo`: the whole story on a simulated cloud (`oneha up` is in server.py)."""

from __future__ import annotations

import sys

import click


def register(main: click.Group) -> None:
    main.add_command(demo)


@click.command()
@click.option("--keep", is_flag=True, help="Keep the work directory (logs, config) afterwards.")
def demo(keep: bool) -> None:
    """Play a host failure on a simulated cloud and show what people receive."""
    from gateway.demo import run_demo
    sys.exit(run_demo(keep=keep))
