"""`oneha readiness [--json]`: if a host failed now, what would oneha do — and does each cluster
survive losing any one host (N+1) or any two (N+2)? Computed now from the live pools, read-only,
with the remediation's own planner (`gateway/flows/readiness.py`)."""

from __future__ import annotations

import json

import click


def register(main: click.Group) -> None:
    main.add_command(readiness)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--vms/--no-vms", default=True, help="List each host's VMs that need an "
              "approval or are left to people (default: yes).")
@click.pass_obj
def readiness(obj, as_json: bool, vms: bool) -> None:
    """What oneha would do if each host failed now, and N+1 / N+2 per cluster.

    Exits 1 when a cluster cannot lose some host (a VM oneha would move finds no room), so
    scripts and monitoring can use it as a check. Reads only: nothing is changed anywhere.
    """
    from gateway.flows.readiness import ReadinessFlow
    from gateway.runtime import Runtime

    report = ReadinessFlow(Runtime.from_settings(obj.settings)).compute()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(render(report, with_vms=vms))
    if any(not c.survives_one for c in report.clusters):
        raise SystemExit(1)


def _yes(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "NO")


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def render(report, with_vms: bool = True) -> str:
    from gateway.domain.readiness import APPROVAL, AUTO, PEOPLE
    from gateway.domain.text import text_table

    lines = []
    for c in report.clusters:
        lines.append(f"cluster {c.label} ({len(c.hosts)} hosts): survives the loss of any one "
                     f"host: {_yes(c.survives_one)}; of any two: {_yes(c.survives_two)}")
        for host, n in c.cannot_lose:
            lines.append(f"  cannot lose {host}: {n} VM(s) would not fit")
        for a, b, n in c.cannot_lose_two[:5]:
            lines.append(f"  cannot lose {a} and {b} together: {n} VM(s) would not fit")
        if len(c.cannot_lose_two) > 5:
            lines.append(f"  ... and {len(c.cannot_lose_two) - 5} more pairs")
    lines.append("")
    rows = [[h.host_name, h.cluster or "-", str(h.count(AUTO)), str(h.count(APPROVAL)),
             str(h.count(PEOPLE)), str(len(h.wont_fit)), _duration(h.seconds),
             "yes" if h.survivable else "NO"] for h in report.hosts]
    lines.append(text_table(["IF THIS HOST FAILED", "CLUSTER", "AUTO", "APPROVAL",
                             "LEFT TO PEOPLE", "NO ROOM", "BACK IN", "SURVIVABLE"], rows)
                 if rows else "no MONITORED host: nothing to judge")
    timing = ", ".join(f"{a} {s:g}s" for a, s in sorted(report.action_seconds.items()))
    lines.append("BACK IN: grace period + moves in waves of the concurrency limit, at "
                 + (f"the measured median action time ({timing})" if report.measured
                    else "60s per action (no recovery measured yet)"))
    if with_vms:
        held = [(h, v) for h in report.hosts for v in h.vms if v.outcome != AUTO]
        if held:
            lines.append("")
            lines.append(text_table(["HOST", "VM", "WOULD BE", "WHY"],
                                    [[h.host_name, f"{v.vm_name} ({v.vm_id})",
                                      "left to people" if v.outcome == PEOPLE else
                                      "held for approval", v.reason] for h, v in held],
                                    max_width=140))
    return "\n".join(lines)
