"""`oneha-simulator`: run a simulated OpenNebula zone, and inject failures into a running one."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request

import click

DEFAULT_CONTROL = "http://127.0.0.1:2700"


@click.group()
def main() -> None:
    """A simulated OpenNebula zone (XML-RPC for pyone) with failure injection."""


@main.command()
@click.option("--hosts", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--vms", default=10, show_default=True, type=click.IntRange(min=0))
@click.option("--frontends", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--base-port", default=2633, show_default=True, type=click.IntRange(0, 65535),
              help="XML-RPC port of front-end 0; front-end i listens on base+i (0: free ports)")
@click.option("--control-port", default=2700, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host", "bind", default="127.0.0.1", show_default=True)
@click.option("--password", default="opennebula", show_default=True, envvar="ONEHA_SIM_PASSWORD")
@click.option("--monitoring-interval", default=2.0, show_default=True, type=float)
@click.option("--boot-time", default=1.0, show_default=True, type=float)
@click.option("--prolog-time", default=0.5, show_default=True, type=float)
@click.option("--epilog-time", default=0.5, show_default=True, type=float)
@click.option("--sched-interval", default=1.0, show_default=True, type=float)
@click.option("--election-timeout", default=2.0, show_default=True, type=float)
@click.option("--log-retention", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--hook-base-path", default="/var/lib/one/remotes/hooks", show_default=True)
def serve(hosts, vms, frontends, base_port, control_port, bind, password, monitoring_interval,
          boot_time, prolog_time, epilog_time, sched_interval, election_timeout, log_retention,
          hook_base_path) -> None:
    """Run until SIGTERM/SIGINT; print the endpoints first."""
    from gateway.errors import ConfigError

    from .core import Simulator
    from .spec import CloudSpec

    spec = CloudSpec(hosts=hosts, vms=vms, frontends=frontends, password=password,
                     monitoring_interval=monitoring_interval, boot_time=boot_time,
                     prolog_time=prolog_time, epilog_time=epilog_time,
                     sched_interval=sched_interval, election_timeout=election_timeout,
                     log_retention=log_retention, hook_base_path=hook_base_path)
    try:
        sim = Simulator(spec, host=bind, base_port=base_port, control_port=control_port)
        sim.start()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen: {exc}") from exc
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    try:
        for i, endpoint in enumerate(sim.endpoints):
            click.echo(f"frontend {i}: {endpoint}")
        click.echo(f"session: oneadmin:{'*' * len(password)}")
        click.echo(f"control: {sim.control_url}", nl=True)
        sys.stdout.flush()
        done.wait()
    finally:
        sim.stop()


def _post(control: str, operation: str, body: dict) -> dict:
    request = urllib.request.Request(f"{control.rstrip('/')}/v1/{operation}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        try:
            payload = json.load(exc)
            detail = f"{payload.get('error')}: {payload.get('detail')}"
        except ValueError:
            detail = str(exc)
        raise click.ClickException(f"{operation} refused: {detail}") from exc
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach the simulator at {control}: {exc.reason}") \
            from exc


control_option = click.option("--control", default=lambda: os.environ.get(
    "ONEHA_SIM_CONTROL", DEFAULT_CONTROL), show_default=DEFAULT_CONTROL,
    help="control URL of a running simulator (env ONEHA_SIM_CONTROL)")


def _injection(name: str, operation: str, args: list[tuple[str, click.Parameter]], doc: str):
    def command(control, **kwargs):
        # click gives nargs=-1 arguments as tuples; the control API wants JSON lists
        body = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
        result = _post(control, operation, body)
        click.echo(json.dumps(result))

    command.__doc__ = doc
    for _, param in reversed(args):
        command = param(command)
    main.command(name)(control_option(command))


_injection("crash-host", "crash_host", [("host_id", click.argument("host_id", type=int))],
           "Host stops answering: ERROR at its next monitoring cycle, its VMs UNKNOWN.")
_injection("recover-host", "recover_host", [("host_id", click.argument("host_id", type=int))],
           "Host answers again: MONITORED at the next cycle, its UNKNOWN VMs RUNNING.")
_injection("freeze-vm", "freeze_vm", [("vm_id", click.argument("vm_id", type=int))],
           "The VM's guest hangs: UNKNOWN until resumed.")
_injection("fail-vm", "fail_vm", [
    ("vm_id", click.argument("vm_id", type=int)),
    ("phase", click.option("--phase", required=True,
                           type=click.Choice(["boot", "prolog", "epilog"])))],
    "The VM's next boot/prolog/epilog fails.")
_injection("partition", "partition", [
    ("host_ids", click.argument("host_ids", type=int, nargs=-1, required=True))],
    "Many hosts unreachable at once.")
_injection("kill-leader", "kill_leader", [], "Kill the Raft leader's oned.")
_injection("kill-server", "kill_server", [("server_id", click.argument("server_id", type=int))],
           "Kill one front-end's oned.")
_injection("restart-server", "restart_server",
           [("server_id", click.argument("server_id", type=int))], "Restart a front-end's oned.")
_injection("heal", "heal", [
    ("host_ids", click.argument("host_ids", type=int, nargs=-1, required=True))],
    "Partitioned hosts answer again.")
_injection("reset-server", "reset_server", [("server_id", click.argument("server_id", type=int))],
           "Recover a follower beyond the log retention (onedb restore + server-reset).")
_injection("set-log-retention", "set_log_retention", [("n", click.argument("n", type=int))],
           "Change RAFT/LOG_RETENTION.")
_injection("lag-follower", "lag_follower", [
    ("server_id", click.argument("server_id", type=int)),
    ("entries", click.argument("entries", type=int))],
    "Follower stops replicating ENTRIES behind the leader (0: resume).")
_injection("delay-answers", "delay_answers", [
    ("method", click.argument("method")), ("seconds", click.argument("seconds", type=float))],
    "oned carries out METHOD calls at once but answers SECONDS late (0: on time).")


@main.command("state")
@control_option
def state(control) -> None:
    """Print hosts, VMs and Raft servers of a running simulator as JSON."""
    try:
        with urllib.request.urlopen(f"{control.rstrip('/')}/v1/state", timeout=10) as resp:
            click.echo(json.dumps(json.load(resp), indent=2))
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach the simulator at {control}: {exc}") from exc


if __name__ == "__main__":
    main()
