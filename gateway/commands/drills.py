"""`oneha drill`: send one drill through OpenNebula's real hook path and say whether it came
back — through which front-end, and how long each leg took (`gateway/flows/drills.py`)."""

from __future__ import annotations

import json

import click


def register(main: click.Group) -> None:
    main.add_command(drill)


@click.command()
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(1, 3600),
              help="Seconds to wait for the drill receiver's message.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def drill(obj, timeout: float, as_json: bool) -> None:
    """Send a drill event through the drill hook and wait for the drill receiver to get it.

    The path: one.hook.update of the drill hook through the Raft leader → the leader's hook
    manager runs the drill hook → its oneha-hook → a gateway → the incident flow → the drill
    receiver (`drills.receiver`), and nobody else. Exits 1 when it did not come back.
    """
    from gateway.flows.drills import DrillFlow
    from gateway.runtime import Runtime

    flow = DrillFlow(Runtime.from_settings(obj.settings))
    sent = flow.send()
    if sent.error:
        result = {"drill_id": sent.drill_id, "reached": False, "error": sent.error}
    else:
        record = flow.wait(sent.drill_id, timeout)
        result = outcome(record, sent.sent_at, timeout)
    click.echo(json.dumps(result, indent=2) if as_json else render(result))
    if not result.get("delivered"):
        raise SystemExit(1)


def outcome(record: dict, sent_at: float, timeout: float) -> dict:
    reached = record.get("reached_at")
    delivered = record.get("delivered")
    out = {"drill_id": record.get("id"), "reached": bool(reached),
           "frontend": record.get("frontend"), "delivered": bool(delivered),
           "gateway_seconds": round(float(reached) - sent_at, 3) if reached else None,
           "receiver": delivered.get("receiver") if delivered else None,
           "receiver_seconds": round(delivered["at"] - sent_at, 3) if delivered else None,
           "incident_id": delivered.get("incident_id") if delivered else None}
    if not reached:
        out["error"] = (f"the drill did not come back within {timeout:g}s: check the drill hook "
                        "(`oneha hooks list`), the leader's oneha-hook log and its urls/key")
    elif not delivered:
        out["error"] = (f"the gateway got the drill from {record.get('frontend')} but no message "
                        f"reached the drill receiver within {timeout:g}s (`oneha notifications "
                        "failed`; is `drills.receiver` set and a worker running?)")
    return out


def render(r: dict) -> str:
    if r.get("delivered"):
        return (f"drill {r['drill_id']}: reached the drill receiver {r['receiver']} in "
                f"{r['receiver_seconds']:.1f}s (hook run by front-end {r['frontend']}, at the "
                f"gateway after {r['gateway_seconds']:.1f}s; incident {r['incident_id']})")
    return f"drill {r['drill_id']}: NOT reached: {r['error']}"
