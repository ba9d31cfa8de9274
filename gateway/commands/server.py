"""Long-running processes and the configuration check."""

from __future__ import annotations

import os
import signal
import sys
import time

import click


def register(main: click.Group) -> None:
    main.add_command(config)
    main.add_command(worker)
    main.add_command(serve)
    main.add_command(up)
    main.add_command(health)


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
    via_up = (f" (of the running `oneha up`, pid {obj.up_runtime['pid']})"
              if getattr(obj, "up_runtime", None) else "")
    click.echo(f"  redis:      {masked_url(s.redis_url)}{via_up}")
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


log_format_option = click.option(
    "--log-format", type=click.Choice(["text", "json"]), default=None,
    help="Log lines as text or JSON objects (default: $ONEHA_LOG_FORMAT, else text).")


@click.command()
@click.option("--concurrency", "-C", default=2, show_default=True)
@click.option("--loglevel", default="info", show_default=True)
@click.option("--name", default=None, help="Worker node name (default: oneha@<pid>).")
@log_format_option
@click.pass_obj
def worker(obj, concurrency: int, loglevel: str, name: str | None, log_format: str | None) -> None:
    """Run a Celery worker that processes events, notifications and remediations."""
    from celery.signals import setup_logging

    from gateway import logs
    from tasks.app import create_celery
    settings = obj.settings
    # A receiver of setup_logging tells Celery not to configure logging itself.
    setup_logging.connect(lambda **_: logs.configure(log_format, loglevel, settings), weak=False)
    logs.configure(log_format, loglevel, settings)
    app = create_celery(settings)
    app.set_default()
    # JSON lines only: no banner (Celery's --quiet); warnings are logged (gateway/logs.py)
    quiet = ["--quiet"] if logs.resolve_format(log_format) == "json" else []
    argv = [*quiet, "worker", f"--loglevel={loglevel}", f"--concurrency={concurrency}",
            "--without-mingle", "--without-gossip", f"--hostname={name or f'oneha{os.getpid()}@%h'}"]
    app.worker_main(argv)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes")
@click.option("--threads", default=4, show_default=True)
@click.option("--dev", is_flag=True, help="Flask's development server instead of gunicorn.")
@log_format_option
@click.pass_obj
def serve(obj, host: str, port: int, workers: int, threads: int, dev: bool,
          log_format: str | None) -> None:
    """Serve the HTTP gateway (ingest, approvals, web UI, health, metrics)."""
    from gateway import logs
    from gateway.app import create_app
    logs.configure(log_format, "INFO", obj.settings)
    app = create_app(obj.settings)
    if dev:
        app.run(host=host, port=port, threaded=True)
        return
    from gunicorn.app.base import BaseApplication
    from gunicorn.glogging import Logger

    class _Logger(Logger):
        """gunicorn's messages through the root handler (gateway/logs.py), not its own."""

        def setup(self, cfg):
            super().setup(cfg)
            for lg in (self.error_log, self.access_log):
                lg.handlers.clear()
                lg.propagate = True

    class _Gunicorn(BaseApplication):
        def load_config(self):
            self.cfg.set("logger_class", _Logger)
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", None)
            # No gunicornc control socket: by default every gunicorn of a user shares
            # ~/.gunicorn/gunicorn.ctl, and a read-only container has no home to put it in.
            self.cfg.set("control_socket_disable", True)

        def load(self):
            return app

    sys.argv = [sys.argv[0]]
    _Gunicorn().run()


@click.command()
@click.option("--port", default=8080, show_default=True)
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Where the embedded Redis keeps its data and the logs go (default: a temp dir).")
@log_format_option
@click.pass_obj
def up(obj, port: int, workdir: str | None, log_format: str | None) -> None:
    """Gateway + worker + beat on this machine; an embedded Redis unless a Redis URL is set.

    Without opennebula.endpoints it runs without remediation, Raft monitor and reconciler (it
    never guesses a cloud; `oneha demo` plays a simulated one). While it runs, `oneha ...` in
    another shell uses the same Redis (the runtime file, `oneha config check` shows it). A process
    that dies (a killed worker, say) is started again."""
    from pathlib import Path

    from gateway import local

    from gateway.config import load_settings
    from gateway.errors import ConfigError
    try:  # not obj.settings: that would follow the runtime file of another `oneha up`
        settings = load_settings(obj.config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    base = Path(workdir) if workdir else local.workdir("oneha-up-")
    config_path = obj.config_path
    if not local.has_opennebula(settings):
        raw = _raw_config(config_path)
        config_path = str(local.write_private_config(local.without_opennebula(raw),
                                                     base / "oneha.effective.yaml"))
        click.echo("no OpenNebula endpoint configured (opennebula.endpoints or ONEHA_ONE_ENDPOINTS):"
                   " running without remediation, Raft monitor or reconciler; events from hooks "
                   "and Alertmanager are still alerted on (`oneha demo` plays a simulated cloud)")
    env = {"ONEHA_LOG_FORMAT": log_format} if log_format else {}
    redis_server = None
    redis_url = settings.redis_url
    if "redis_url" not in settings.model_fields_set:
        redis_server = local.EmbeddedRedis(base / "redis").start()
        redis_url = redis_server.url
        env["ONEHA_REDIS_URL"] = redis_url  # overrides the file for the children
        click.echo(f"embedded Redis on {redis_url} (data in {base / 'redis'})")
    procs = local.Processes(config_path, base / "logs", env=env)
    runtime = None
    try:
        gateway = procs.oneha("gateway", "serve", "--port", str(port))
        procs.oneha("worker", "worker")
        procs.oneha("beat", "beat")
        local.wait_for_port(port, proc=gateway)
        runtime = local.write_runtime({"redis_url": redis_url, "url": f"http://127.0.0.1:{port}/",
                                       "workdir": str(base), "config": config_path})
        click.echo(f"oneha is up: http://127.0.0.1:{port}/  (logs in {base / 'logs'}; Ctrl-C stops)")
        click.echo(f"`oneha ...` in another shell uses this Redis (runtime file {runtime})")
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
        if runtime is not None:
            local.remove_runtime(runtime)
        procs.stop_all()
        if redis_server:
            redis_server.stop()


def _raw_config(path: str | None) -> dict:
    """The configuration file as written (already validated by load_settings), or {}."""
    if not path:
        return {}
    import yaml
    return yaml.safe_load(open(path, encoding="utf-8")) or {}


@click.command()
@click.option("--role", type=click.Choice(["auto", "serve", "worker", "beat"]), default="auto",
              show_default=True, help="What to check; auto: what this container's process 1 runs.")
@click.option("--port", default=None, type=int, help="The gateway's port (default: from process 1).")
@click.pass_obj
def health(obj, role: str, port: int | None) -> None:
    """Exit 0 when this container's oneha process does its job (the image's HEALTHCHECK).

    serve: /readyz answers 200 (Redis reachable); worker: this host's worker reported itself
    alive in the last 15 s; beat: Redis answers."""
    import socket
    import urllib.request

    from gateway.runtime import Runtime
    argv = _pid1_argv()
    if role == "auto":
        role = next((r for r in ("serve", "worker", "beat") if r in argv), "")
        if not role:
            raise click.ClickException(f"cannot tell what process 1 runs ({' '.join(argv)!r}); "
                                       "give --role")
    if role == "serve":
        if port is None:
            port = int(argv[argv.index("--port") + 1]) if "--port" in argv[:-1] else 8080
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as resp:
                ok, why = resp.status == 200, f"/readyz {resp.status}"
        except OSError as exc:
            ok, why = False, f"/readyz: {exc}"
    elif role == "worker":
        from gateway.adapters.store.workers import WorkerRegistry
        me = socket.gethostname()
        alive = WorkerRegistry.of(Runtime.from_settings(obj.settings)).alive()
        ok = any(n.split("@", 1)[-1] == me for n in alive)
        why = f"worker on {me} {'alive' if ok else 'not seen in the last 15 s'}"
    else:
        ok = bool(Runtime.from_settings(obj.settings).redis.ping())
        why = "Redis answers"
    click.echo(f"{role}: {'healthy' if ok else 'unhealthy'} ({why})")
    if not ok:
        raise click.exceptions.Exit(1)


def _pid1_argv() -> list[str]:
    try:
        with open("/proc/1/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []
