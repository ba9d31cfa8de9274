"""Long-running processes and the configuration check."""

from __future__ import annotations

import os
import sys

import click


def register(main: click.Group) -> None:
    main.add_command(config)
    main.add_command(worker)
    main.add_command(serve)


@click.group()
def config() -> None:
    """Configuration commands."""


@config.command("check")
@click.pass_obj
def config_check(obj) -> None:
    """Validate the configuration and print a summary (secrets masked)."""
    from gateway.adapters.store import masked_url
    s = obj.settings
    problems = receiver_problems(s)
    verdict = f"{len(problems)} error(s)" if problems else "OK"
    click.echo(f"configuration {verdict} ({obj.config_path or 'built-in defaults'})")
    click.echo(f"  redis:      {masked_url(s.redis_url)}")
    click.echo(f"  opennebula: {', '.join(s.opennebula.endpoints)}")
    click.echo(f"  front-ends: {', '.join(sorted(s.ingest.frontends)) or '(none: no hook can sign)'}")
    for r in s.receivers:
        click.echo(f"  receiver {r.name}: {len(r.urls)} URL(s)")
    for warning in config_warnings(s):
        click.echo(f"  warning: {warning}")
    for problem in problems:
        click.echo(f"  error: {problem}", err=True)
    if problems:
        raise click.exceptions.Exit(1)


def receiver_problems(s) -> list[str]:
    """Receiver URLs no message could ever reach, found now rather than at the first incident."""
    from gateway.adapters.notifier import url_problem
    return [f"receiver {r.name}, URL {n}: {problem}"
            for r in s.receivers for n, u in enumerate(r.urls, 1)
            if (problem := url_problem(u.get_secret_value()))]


def config_warnings(s) -> list[str]:
    """Valid but probably not what an operator wants in production."""
    out = []
    if s.secret_key.get_secret_value() in ("change-me", ""):
        out.append("secret_key is the default: anyone could forge approval links "
                   "(set secret_key or ONEHA_SECRET_KEY)")
    if not s.receivers:
        out.append("no receivers: incidents are recorded but nobody is told")
    if not s.ingest.frontends:
        out.append("no ingest.frontends: every hook event will be refused (401)")
    return out


@click.command()
@click.option("--concurrency", "-C", default=2, show_default=True)
@click.option("--loglevel", default="info", show_default=True)
@click.option("--name", default=None, help="Worker node name (default: oneha@<pid>).")
@click.pass_obj
def worker(obj, concurrency: int, loglevel: str, name: str | None) -> None:
    """Run a Celery worker that processes events, notifications and remediations."""
    from tasks.app import create_celery
    app = create_celery(obj.settings)
    app.set_default()
    argv = ["worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}",
            "--without-mingle", "--without-gossip", f"--hostname={name or f'oneha{os.getpid()}@%h'}"]
    app.worker_main(argv)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
@click.option("--threads", default=4, show_default=True)
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn.")
@click.pass_obj
def serve(obj, host: str, port: int, workers: int, threads: int, dev: bool) -> None:
    """Serve the HTTP gateway (ingest, approvals, web UI, health, metrics)."""
    from gateway.app import create_app
    app = create_app(obj.settings)
    if dev:
        app.run(host=host, port=port, threaded=True)
        return
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)

        def load(self):
            return app

    sys.argv = [sys.argv[0]]
    _Gunicorn().run()
