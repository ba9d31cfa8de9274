"""`oneha up` (all-in-one local mode) and `oneha demo` (the whole story on a simulated cloud)."""

from __future__ import annotations

import os
import signal
import sys
import time

import click


def register(main: click.Group) -> None:
    main.add_command(up)
    main.add_command(demo)


@click.command()
@click.option("--port", default=8080, show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Where the embedded Redis keeps its data and the logs go (default: a temp dir).")
@click.pass_obj
def up(obj, port: int, workdir: str | None) -> None:
    """Gateway + worker + beat on this machine; an embedded Redis unless REDIS_URL is set.

    A process that dies (a killed worker, say) is started again."""
    from pathlib import Path

    from gateway import local

    obj.settings  # validates the configuration before anything starts
    base = Path(workdir) if workdir else local.workdir("oneha-up-")
    env = {}
    redis_server = None
    if not (os.environ.get("REDIS_URL") or os.environ.get("ONEHA_REDIS_URL")):
        redis_server = local.EmbeddedRedis(base / "redis").start()
        env["ONEHA_REDIS_URL"] = redis_server.url  # overrides the file for the children
        click.echo(f"embedded Redis on {redis_server.url} (data in {base / 'redis'})")
    procs = local.Processes(obj.config_path, base / "logs", env=env)
    try:
        gateway = procs.oneha("gateway", "serve", "--port", str(port))
        procs.oneha("worker", "worker")
        if _has_command("beat"):
            procs.oneha("beat", "beat")
        local.wait_for_port(port, proc=gateway)
        click.echo(f"oneha is up: http://127.0.0.1:{port}/  (logs in {base / 'logs'}; Ctrl-C stops)")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(0.5)
            for name, status in procs.restart_exited():
                click.echo(f"{name} exited with status {status}; started it again "
                           f"(log: {base / 'logs' / name}.log)", err=True)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    finally:
        procs.stop_all()
        if redis_server:
            redis_server.stop()


def _has_command(name: str) -> bool:
    from gateway.cli import main
    return name in main.commands


@click.command()
@click.option("--keep", is_flag=True, help="Keep the work directory (logs, config) afterwards.")
def demo(keep: bool) -> None:
    """Play a host failure on a simulated cloud and show what people receive."""
    from gateway.demo import run_demo
    sys.exit(run_demo(keep=keep))
