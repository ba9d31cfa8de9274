"""`oneha raft` (the front-end Raft cluster as a table), `oneha beat` (the one scheduler of the
periodic tasks) and `oneha reconcile` (a reconciler pass by hand)."""

from __future__ import annotations

import json
import signal
import threading
import time

import click


def register(main: click.Group) -> None:
    main.add_command(raft)
    main.add_command(beat)
    main.add_command(reconcile)


def _runtime(obj):
    from gateway.runtime import Runtime
    return Runtime.from_settings(obj.settings)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the poll as JSON.")
@click.pass_obj
def raft(obj, as_json: bool) -> None:
    """Poll every front-end's Raft status now and print it as a table.

    Exits 1 when something critical is found (no leader, two leaders, a server unreachable or
    beyond the recovery window), so scripts can use it as a check.
    """
    from gateway.adapters.opennebula import OpenNebula
    from gateway.adapters.store.raft import snapshot_of
    from gateway.domain.raft import RaftMemory, assess
    from tasks.monitor import poll_raft, rules_of

    rt = _runtime(obj)
    one = OpenNebula.from_settings(rt.settings)
    statuses, zone = poll_raft(rt.settings, one)
    rules = rules_of(rt, one)
    now = time.time()
    # No memory: a one-off look shows the state, not changes over time (that is the monitor's).
    snap = snapshot_of(assess(statuses, zone, rules, RaftMemory(), now), now)
    if as_json:
        click.echo(json.dumps(snap, indent=2))
    else:
        click.echo(render_table(snap, zone.name if zone else f"zone{rules.zone_id}",
                                rules.log_retention))
    if any(f["severity"] == "critical" for f in snap["findings"]):
        raise SystemExit(1)


def render_table(snap: dict, zone_name: str, log_retention: int) -> str:
    from gateway.domain.text import text_table
    headers = ["ID", "NAME", "ENDPOINT", "STATE", "TERM", "LOG INDEX", "COMMIT", "LAG"]
    rows = []
    for s in snap["servers"]:
        mark = "*" if s["id"] is not None and s["id"] == snap["leader"] else ""
        rows.append([_cell(s["id"]), s["name"] + mark, s["endpoint"], s["state"], _cell(s["term"]),
                     _cell(s["log_index"]), _cell(s["commit"]), _cell(s["lag"])])
    lines = [f"zone {zone_name}: {len(rows)} server(s) polled, log retention {log_retention}"
             " (* = leader)",
             text_table(headers, rows, indent="", max_width=200, rule=False)]
    for s in snap["servers"]:
        if s["error"]:
            lines.append(f"  {s['name']}: {s['error']}")
    if snap["findings"]:
        lines.append("findings:")
        for f in snap["findings"]:
            first, *rest = f["summary"].splitlines()
            lines.append(f"  [{f['severity']}] {f['object_id']} {f['condition']}: {first}")
            lines += [f"      {line}" for line in rest]
    else:
        lines.append("no findings: one leader, every server answers and keeps up")
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else str(value)


@click.command()
@click.option("--loglevel", default="info", show_default=True)
@click.option("--status", is_flag=True, help="Print the periodic tasks and their last claims.")
@click.pass_obj
def beat(obj, loglevel: str, status: bool) -> None:
    """Send the periodic tasks (Raft check, reconciler, due notifications) to the workers.

    Run one or several (for HA): each task is sent once per interval, whichever instance claims
    the interval in Redis first."""
    from gateway.adapters.store.schedule import ScheduleStore
    from tasks.app import create_celery
    from tasks.beat import Beat, celery_sender, collect_periodic

    settings = obj.settings
    periodic = collect_periodic(settings)
    if status:
        from gateway.adapters.store.raft import RaftStore
        from gateway.adapters.store.reconciler import ReconcilerStore

        rt = _runtime(obj)
        claims = ScheduleStore.of(rt).claims()
        stats = ScheduleStore.of(rt).run_stats()
        for task, interval in sorted(periodic.items()):
            slot, who = claims.get(task, (None, ""))
            last = f"last sent by {who}" if who else "never sent"
            runs = (f", ran {stats.get(task + ':ran', 0)}x, skipped "
                    f"{stats.get(task + ':overlapped', 0)}x (previous run still going)")
            click.echo(f"{task:<22} every {interval:g}s  {last}{runs}")
        snap, rec = RaftStore.of(rt).snapshot(), ReconcilerStore.of(rt).last()
        if snap:
            click.echo(f"last Raft check at {snap['at']:.0f}: leader {snap['leader']}, "
                       f"{len(snap['findings'])} finding(s)")
        if rec:
            click.echo(f"last reconcile at {rec['at']:.0f}: {rec['hosts']} hosts, {rec['vms']} "
                       f"VMs, {rec['raised']} raised, {rec['resolved']} resolved")
        return
    from gateway import logs
    logs.configure(None, loglevel, settings)  # $ONEHA_LOG_FORMAT: text or json
    app = create_celery(settings)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    Beat(app.oneha_runtime, periodic, celery_sender(app)).run(stop)


@click.command()
@click.option("--once", is_flag=True, help="One pass, print what it decided, exit.")
@click.pass_obj
def reconcile(obj, once: bool) -> None:
    """Compare the host and VM pools with the open incidents and raise/resolve what differs.

    Without --once it runs every `reconciler.interval` until interrupted (the beat normally runs
    it as the task `oneha.reconcile`)."""
    from gateway.errors import Permanent, Transient
    from tasks.monitor import run_reconcile

    rt = _runtime(obj)
    while True:
        try:
            result = run_reconcile(rt)
        except (Transient, Permanent) as exc:
            if once:
                raise click.ClickException(str(exc)) from None
            click.echo(f"reconcile failed: {exc}", err=True)
        else:
            if result.skipped:
                click.echo(f"skipped: {result.skipped}")
            else:
                for d in result.plan.findings:
                    if d.action != "known":
                        click.echo(f"{d.action:<8} {d.object_key:<10} {d.reason}")
                s = result.as_dict()
                click.echo(f"{s['hosts']} hosts, {s['vms']} VMs: {s['raised']} raised, "
                           f"{s['resolved']} resolved, {s['waiting']} waiting "
                           f"({s['new_events']} new events recorded)")
        if once:
            return
        time.sleep(rt.settings.reconciler.interval)
