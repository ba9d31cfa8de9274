"""`oneha send-test`, `oneha notifications failed|log [ID]|retry ID|dismiss ID`.

send-test talks to the receivers directly (no Redis, no worker): it is the check an operator runs
while setting oneha up, and it answers at once. URLs are always printed masked.
"""

from __future__ import annotations

import json

import click

from gateway.commands.output import echo_list
from gateway.domain.timefmt import utc


def register(main: click.Group) -> None:
    main.add_command(send_test)
    main.add_command(notifications)


@click.command("send-test")
@click.option("--receiver", "-r", "names", multiple=True,
              help="Only this receiver (repeatable); default: every receiver.")
@click.pass_obj
def send_test(obj, names: tuple[str, ...]) -> None:
    """Send a test message to every URL of every receiver; exit 1 if any failed."""
    from gateway.flows.test_message import send_test as send

    settings = obj.settings
    receivers = settings.receivers
    if names:
        unknown = sorted(set(names) - {r.name for r in receivers})
        if unknown:
            raise click.ClickException(f"no receiver named {', '.join(unknown)} in the configuration"
                                       f" (known: {', '.join(r.name for r in receivers) or 'none'})")
        receivers = [r for r in receivers if r.name in names]
    if not receivers:
        raise click.ClickException("no receivers configured: add `receivers:` with apprise URLs")
    failed = 0
    for sent in send(receivers, settings.notify.send_timeout):
        result = sent.result
        failed += not result.ok
        line = (f"{'OK    ' if result.ok else 'FAILED'}  {sent.receiver}  {sent.kind:4}  "
                f"{result.elapsed * 1000:6.0f} ms  {result.url}")
        if not result.ok:
            line += f"\n        {result.status}{' (permanent)' if result.permanent else ''}: " \
                    f"{result.error}"
        click.echo(line)
    total = sum(len(r.urls) for r in receivers)
    click.echo(f"{total - failed} of {total} URL(s) delivered")
    if failed:
        raise SystemExit(1)


@click.group()
def notifications() -> None:
    """Delivery records and dead letters."""


def _store(obj):
    import redis

    from gateway.adapters.store.notifications import NotificationStore
    from gateway.runtime import Runtime
    rt = Runtime.from_settings(obj.settings)
    try:
        rt.redis.ping()
    except redis.exceptions.RedisError as exc:
        raise click.ClickException(f"cannot reach Redis: {exc}") from None
    return NotificationStore.of(rt)


@notifications.command("failed")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def failed_cmd(obj, as_json: bool) -> None:
    """Dead letters: deliveries that failed after every retry (or could not be tried)."""
    items = _store(obj).dead_letters()
    if as_json:
        for d in items:
            click.echo(json.dumps({k: v for k, v in d.items() if k != "notification"},
                                  sort_keys=True))
        return
    if not items:
        click.echo("no failed deliveries")
        return
    for d in items:
        click.echo(f"{utc(d['at'])}  {d['notification_id']}  receiver={d['receiver']}  "
                   f"attempts={d['attempts']}")
        click.echo(f"    {d['title']}")
        if d.get("url"):
            click.echo(f"    url:   {d['url']}")
        click.echo(f"    error: {d['status']}: {d['error']}")
    click.echo(f"{len(items)} failed deliver{'y' if len(items) == 1 else 'ies'}")


@notifications.command("log")
@click.argument("notification_id", required=False)
@click.option("--limit", "-n", default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.pass_obj
def log_cmd(obj, notification_id: str | None, limit: int, as_json: bool) -> None:
    """Recent notifications, or every attempt of one (NOTIFICATION_ID)."""
    store = _store(obj)
    if notification_id is None:
        rows = store.recent(limit)
        if as_json:
            for row in rows:
                click.echo(json.dumps(row, sort_keys=True))
            return
        echo_list(rows, "no notifications recorded",
                  lambda row: f"{utc(row['created_at'])}  {row['status']:8}  "
                              f"{row['notification_id']}  {row['title']}")
        return
    rec = store.get(notification_id)
    if rec is None:
        raise click.ClickException(f"no notification {notification_id!r} recorded "
                                   "(unknown id, or expired after notify.retention)")
    if as_json:
        click.echo(json.dumps(rec, sort_keys=True, indent=2))
        return
    click.echo(rec["notification_id"])
    click.echo(f"  status:     {rec['status']}")
    click.echo(f"  receiver:   {rec['receiver']}   transition: {rec['transition']}   "
               f"incident: {rec['incident_id']}")
    click.echo(f"  title:      {rec['title']}")
    click.echo(f"  created:    {utc(rec['created_at'])}   updated: {utc(rec['updated_at'])}")
    for u in rec["urls"]:
        click.echo(f"  url {u['url_key']}: {u['state']} after {u['attempts']} attempt(s)  "
                   f"{u['url']}")
    for a in rec["attempts"]:
        line = (f"  {utc(a['at'])}  #{a['attempt']} {a['url_key']}  {a['status']:8} "
                f"{a['elapsed'] * 1000:6.0f} ms  {a['outcome']}: {a['reason']}")
        if a.get("error"):
            line += f"\n      {a['error']}"
        click.echo(line)


@notifications.command("retry")
@click.argument("notification_id")
@click.pass_obj
def retry_cmd(obj, notification_id: str) -> None:
    """Queue a dead-lettered notification again (after fixing its receiver): its failed URLs get
    a fresh set of attempts; URLs that were delivered are not sent again."""
    import time as _time

    from tasks.app import create_celery
    from tasks.notify import DELIVER_TASK
    store = _store(obj)
    try:
        n, url_keys = store.revive(notification_id, _time.time())
    except KeyError:
        raise click.ClickException(f"no dead letter for {notification_id!r} "
                                   "(see `oneha notifications failed`)") from None
    create_celery(obj.settings).send_task(DELIVER_TASK, args=[n.to_json()],
                                          kwargs={"urls": url_keys})
    what = "every URL" if url_keys is None else f"{len(url_keys)} URL(s)"
    click.echo(f"queued {notification_id} again for {what} of receiver {n.receiver}")


@notifications.command("dismiss")
@click.argument("notification_id")
@click.pass_obj
def dismiss_cmd(obj, notification_id: str) -> None:
    """Remove a notification's dead letters once someone has dealt with them."""
    removed = _store(obj).dismiss(notification_id)
    if not removed:
        raise click.ClickException(f"no dead letter for {notification_id!r}")
    click.echo(f"dismissed {removed} dead letter(s) of {notification_id}")
