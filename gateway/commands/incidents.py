"""`oneha incidents`, `oneha incident ID`, `oneha ack ID`, `oneha silence add|list|expire`,
`oneha routes test LABEL=VALUE…`."""

from __future__ import annotations

import getpass
import json
import time

import click

from gateway.commands.output import echo_list
from gateway.domain.model import parse_duration
from gateway.domain.timefmt import utc


def register(main: click.Group) -> None:
    main.add_command(incidents)
    main.add_command(incident)
    main.add_command(ack)
    main.add_command(silence)
    main.add_command(routes)


def _store(obj):
    from gateway.adapters.store.incidents import IncidentStore
    from gateway.runtime import Runtime
    return IncidentStore(Runtime.from_settings(obj.settings))


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers; the flag still works
        return ""


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Resolved ones too.")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def incidents(obj, show_all: bool, limit: int, as_json: bool) -> None:
    """List incidents (open ones, newest first)."""
    found = _store(obj).list(open_only=not show_all, limit=limit)
    if as_json:
        from gateway.web.api import incident_json
        click.echo(json.dumps([incident_json(i) for i in found], indent=2))
        return
    echo_list(found, "no incidents" if show_all else "no open incidents",
              lambda i: f"{i.id:<28} {i.state:<13} {utc(i.created_at):<21} {len(i.objects):>4}  "
                        f"{i.title}",
              header=f"{'ID':<28} {'STATE':<13} {'SINCE':<21} {'OBJ':>4}  TITLE")


@click.command()
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def incident(obj, incident_id: str, as_json: bool) -> None:
    """Show one incident: objects and timeline."""
    store = _store(obj)
    inc = store.get(incident_id)
    if inc is None:
        raise click.ClickException(f"no incident {incident_id} (see `oneha incidents --all`)")
    timeline = store.timeline(incident_id)
    if as_json:
        from gateway.web.api import incident_json
        click.echo(json.dumps(incident_json(inc, timeline), indent=2))
        return
    click.echo(f"{inc.id}: {inc.title}")
    click.echo(f"  state {inc.state}, opened {utc(inc.created_at)}"
               + (f", resolved {utc(inc.resolved_at)}" if inc.resolved_at else "")
               + (f", acknowledged by {inc.acknowledged_by}" if inc.acknowledged_by else ""))
    if inc.plan_id:
        click.echo(f"  remediation plan {inc.plan_id}")
    click.echo("  labels: " + ", ".join(f"{k}={v}" for k, v in sorted(inc.labels.items())))
    click.echo(f"  objects ({len(inc.objects)}):")
    for o in list(inc.objects.values())[:50]:
        click.echo(f"    {o.key:<12} {o.name:<24} {o.state_label:<20} {o.status:<9} host={o.host}")
    if len(inc.objects) > 50:
        click.echo(f"    … and {len(inc.objects) - 50} more")
    click.echo("  timeline:")
    for e in timeline:
        click.echo(f"    {utc(e.t)} [{e.kind}] {e.text}" + (f" ({e.actor})" if e.actor != "oneha" else ""))


@click.command()
@click.argument("incident_id")
@click.option("--by", default=_user, show_default="$USER", help="Who acknowledges.")
@click.option("--comment", "-m", default="", help="Why / what you are doing.")
@click.pass_obj
def ack(obj, incident_id: str, by: str, comment: str) -> None:
    """Acknowledge an incident: no reminders, no escalation; the resolve message still comes."""
    from gateway.domain.incidents import TransitionError
    if not by:
        raise click.UsageError("--by is required (no user name found)")
    try:
        from gateway.flows.incident import IncidentFlow
        from gateway.runtime import Runtime
        flow = IncidentFlow(Runtime.from_settings(obj.settings))
        inc = flow.transition(incident_id, "acknowledged", comment or "acknowledged", by)
    except KeyError:
        raise click.ClickException(f"no incident {incident_id}") from None
    except TransitionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{inc.id} acknowledged by {by}")


@click.group()
def silence() -> None:
    """Silences: matching incidents are recorded but not sent."""


@silence.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--duration", "-d", default="2h", show_default=True, help="e.g. 30m, 2h, 1d")
@click.option("--starts-in", default="0s", show_default=True, help="Start later, e.g. 1h.")
@click.option("--author", "-a", default=_user, show_default="$USER")
@click.option("--comment", "-m", required=True, help="Why (people read it at 3 a.m.).")
@click.pass_obj
def silence_add(obj, matchers: tuple[str, ...], duration: str, starts_in: str, author: str,
                comment: str) -> None:
    """Add a silence: `oneha silence add host=node07 'resource=~VM|HOST' -m "rack work"`."""
    from gateway.domain.muting import SilenceError
    try:
        length, delay = parse_duration(duration), parse_duration(starts_in)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    start = time.time() + delay
    try:
        s = _store(obj).add_silence(list(matchers), start + length, author, comment, starts_at=start)
    except SilenceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"silence {s.id} until {utc(s.ends_at)}: {', '.join(str(m) for m in s.matchers)}")


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="Expired ones too.")
@click.pass_obj
def silence_list(obj, show_all: bool) -> None:
    """List silences."""
    now = time.time()
    found = _store(obj).list_silences(include_expired=show_all)
    if not found:
        click.echo("no silences")
        return
    click.echo(f"{'ID':<13} {'STATE':<8} {'ENDS':<21} {'AUTHOR':<12} MATCHERS — COMMENT")
    for s in found:
        click.echo(f"{s.id:<13} {s.state(now):<8} {utc(s.ends_at):<21} {s.author:<12} "
                   f"{', '.join(str(m) for m in s.matchers)} — {s.comment}")


@silence.command("expire")
@click.argument("silence_id")
@click.option("--by", default=_user, show_default="$USER")
@click.pass_obj
def silence_expire(obj, silence_id: str, by: str) -> None:
    """End a silence now."""
    try:
        s = _store(obj).expire_silence(silence_id, by or "cli")
    except KeyError:
        raise click.ClickException(f"no silence {silence_id} (see `oneha silence list --all`)") from None
    click.echo(f"silence {s.id} expired at {utc(s.ends_at)}")


@click.group()
def routes() -> None:
    """The routing tree."""


@routes.command("test")
@click.argument("labels", nargs=-1, required=True)
@click.pass_obj
def routes_test(obj, labels: tuple[str, ...]) -> None:
    """Which receivers an object with LABEL=VALUE… would reach, and how it would be grouped.

    Example: oneha routes test resource=VM host=node07 team=db
    """
    from gateway.domain.routing import (DEFAULT_INHIBIT_RULES, match_routes, matches_all,
                                        parse_labels)
    try:
        parsed = parse_labels(labels)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    s = obj.settings
    for m in match_routes(s.route, parsed, [r.name for r in s.receivers]):
        click.echo(m.describe())
        click.echo(f"  group: {m.group_key(parsed, '<incident>')}  group_wait {m.group_wait:g}s, "
                   f"group_interval {m.group_interval:g}s, repeat_interval {m.repeat_interval:g}s")
        if m.escalate_after is not None and m.escalate_to:
            click.echo(f"  escalation: after {m.escalate_after:g}s unacknowledged -> "
                       f"{' -> '.join(m.escalate_to)}")
    rules = DEFAULT_INHIBIT_RULES if s.inhibit_rules is None else s.inhibit_rules
    for rule in rules:
        if matches_all(rule.target_matchers, parsed):
            click.echo("  may be inhibited while an open incident matches "
                       f"{', '.join(str(x) for x in rule.source_matchers)}"
                       + (f" with the same {', '.join(rule.equal)}" if rule.equal else ""))
