"""`oneha approve|deny|pause|resume|plans|audit` — the operator's side of remediation."""

from __future__ import annotations

import getpass
import json

import click

from gateway.domain.timefmt import utc


def register(main: click.Group) -> None:
    for cmd in (approve, deny, pause, resume, plans, audit):
        main.add_command(cmd)


def _remediator(obj):
    """A Remediator for decisions: Redis and the Celery queue; no OpenNebula call is made here."""
    from gateway.flows.remediation import build_remediator
    from gateway.runtime import Runtime
    from tasks.app import create_celery
    return build_remediator(Runtime.from_settings(obj.settings),
                            create_celery(obj.settings).send_task)


def _resolve_plan(rem, ident: str) -> str:
    """A plan id, an incident id (its latest plan) or an approval link."""
    if rem.store.plan(ident) is not None:
        return ident
    ids = rem.store.plan_ids(ident)
    if ids:
        return ids[-1]
    raise click.ClickException(f"no plan or incident {ident!r} (see `oneha plans`)")


def _decide(obj, ident: str, decision: str, who: str | None) -> None:
    from gateway.domain.approvals import ApprovalRefused
    rem = _remediator(obj)
    who = who or getpass.getuser()
    try:
        if "/approvals/" in ident or ident.count(".") == 1 and len(ident) > 60:
            token = ident.rsplit("/approvals/", 1)[-1]
            status = rem.decide_by_token(token, decision, who, via="cli")
        else:
            status = rem.decide_plan(_resolve_plan(rem, ident), decision, who, via="cli")
    except ApprovalRefused as exc:
        raise click.ClickException(f"refused ({exc.code}): {exc.message}") from None
    click.echo(f"{decision} by {who}; plan is now {status}")


def _decision_command(name: str, decision: str, doc: str) -> click.Command:
    """`oneha approve` and `oneha deny`: the same command but for the decision it records."""
    @click.command(name=name, help=doc)
    @click.argument("ident")
    @click.option("--as", "who", help="Identity to record (default: your login name).")
    @click.pass_obj
    def command(obj, ident: str, who: str | None) -> None:
        _decide(obj, ident, decision, who)
    return command


approve = _decision_command("approve", "approved",
                            "Approve a remediation plan (plan id, incident id or approval link).")
deny = _decision_command("deny", "denied", "Deny a remediation plan: nothing of it is done.")


@click.command()
@click.option("--reason", "-m", default="", help="Why (shown in every held action's audit).")
@click.option("--as", "who", help="Identity to record (default: your login name).")
@click.pass_obj
def pause(obj, reason: str, who: str | None) -> None:
    """Stop every automatic and approved action until `oneha resume`."""
    rem = _remediator(obj)
    who = who or getpass.getuser()
    rem.store.pause(who, reason)
    rem.store.audit("paused", actor=who, reason=reason)
    click.echo(f"remediation paused by {who}")


@click.command()
@click.option("--as", "who", help="Identity to record (default: your login name).")
@click.pass_obj
def resume(obj, who: str | None) -> None:
    """Let remediation act again after `oneha pause`."""
    rem = _remediator(obj)
    who = who or getpass.getuser()
    was = rem.store.resume()
    rem.store.audit("resumed", actor=who)
    click.echo("remediation resumed" if was else "remediation was not paused")


@click.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.argument("plan_id", required=False)
@click.pass_obj
def plans(obj, limit: int, as_json: bool, plan_id: str | None) -> None:
    """Recent plans with their status; with PLAN_ID, its steps and outcomes."""
    rem = _remediator(obj)
    paused = rem.store.paused()
    if paused and not as_json:
        click.echo(f"PAUSED by {paused.get('by')}: {paused.get('reason') or '-'}")
    ids = [plan_id] if plan_id else rem.store.recent_plans(limit)
    rows = []
    for pid in ids:
        plan = rem.store.plan(pid)
        if plan is None:
            raise click.ClickException(f"no plan {pid!r}")
        state = rem.store.plan_state(pid)
        outcomes = rem.store.outcomes(pid)
        rows.append({"plan_id": pid, "incident_id": plan.incident_id, "mode": plan.mode,
                     "status": state.get("status"), "reason": state.get("reason"),
                     "steps": [{"key": s.key, "action": s.action, "vm": s.vm_id,
                                "status": (outcomes.get(s.key) or {}).get("status", "pending"),
                                "detail": (outcomes.get(s.key) or {}).get("detail", s.reason)}
                               for s in plan.steps],
                     "skipped": [{"vm": s.vm_id, "code": s.code, "reason": s.reason}
                                 for s in plan.skipped],
                     "warnings": list(plan.warnings)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no plans")
    for row in rows:
        click.echo(f"{row['plan_id']}  {row['status']:<18} {row['mode']:<8} "
                   f"{len(row['steps'])} step(s)  {row['reason']}")
        for w in row["warnings"]:
            click.echo(f"  WARNING {w}")
        if plan_id:
            for s in row["steps"]:
                click.echo(f"  {s['key']:<24} {s['status']:<12} {s['detail']}")
            for s in row["skipped"]:
                click.echo(f"  vm:{s['vm']:<21} left alone   {s['code']}: {s['reason']}")


@click.command()
@click.option("--limit", default=50, show_default=True)
@click.option("--plan", "plan_id", help="Only this plan's entries.")
@click.pass_obj
def audit(obj, limit: int, plan_id: str | None) -> None:
    """The remediation audit log: every decision and call, oldest first."""
    rem = _remediator(obj)
    for row in rem.store.audit_log(limit, plan_id=plan_id):
        data = " ".join(f"{k}={v}" for k, v in row["data"].items())
        click.echo(f"{utc(row['t'])} {row['actor']:<12} {row['what']:<20} {row['plan'] or '-'} {data}")
