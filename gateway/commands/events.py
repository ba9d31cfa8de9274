"""`oneha events`: the event log — what came in (hooks, reconciler, Raft monitor, Alertmanager),
newest first, as recorded before the gateway answered 202."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    main.add_command(events)


@click.command()
@click.option("--limit", "-n", default=30, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--object", "object_key", metavar="KEY", help="Only events about one object: "
              "host:7, vm:42, frontend:zone0/1.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def events(obj, limit: int, object_key: str | None, as_json: bool) -> None:
    """Recent events, newest first: when, source, status, condition, object, front-end, id."""
    from gateway.adapters.store.events import EventStore
    from gateway.domain.timefmt import utc
    from gateway.runtime import Runtime
    found = EventStore(Runtime.from_settings(obj.settings)).recent(limit, object_key)
    if as_json:
        for e in found:
            click.echo(e.to_json(with_xml=False))
        return
    if not found:
        click.echo(f"no events recorded about {object_key}" if object_key
                   else "no events recorded")
        return
    for e in found:
        what = f"{e.object_key} {e.name}"
        click.echo(f"{utc(e.occurred_at):<21} {e.source:<12} {e.status:<9} {e.condition:<28} "
                   f"{what:<28} {e.frontend or '-':<8} {e.event_id}")
