"""`oneha …` — the command line. Each area registers its commands from `gateway/commands/`."""

from __future__ import annotations

import importlib
import sys

import click

from .config import load_settings
from .errors import ConfigError
from .local import follow_up

# Each module defines `register(group)`; listed here so `oneha --help` shows one whole tool.
COMMAND_MODULES = (
    "gateway.commands.server",  # serve, worker, up, config check
    "gateway.commands.notifications",  # send-test, notifications failed
    "gateway.commands.incidents",  # incidents, ack, silence, routes test
    "gateway.commands.events",  # events
    "gateway.commands.remediation",  # approve, deny, pause, resume
    "gateway.commands.frontends",  # raft
    "gateway.commands.hooks",  # hooks install|list|remove
    "gateway.commands.keys",  # keys new
    "gateway.commands.demo",  # demo
    "gateway.commands.users",  # user add|remove|list, token add|remove
    "gateway.commands.readiness",  # readiness
    "gateway.commands.drills",  # drill
)


class Context:
    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._settings = None
        self.up_runtime: dict | None = None  # what a running `oneha up` wrote, when followed

    @property
    def settings(self):
        if self._settings is None:
            try:
                settings = load_settings(self.config_path)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
            # No Redis URL given: the one a running `oneha up` uses (gateway/local.py).
            self._settings, self.up_runtime = follow_up(settings)
        return self._settings


class Unavailable(click.ClickException):
    """Redis (or another service oneha needs) is away: one line, exit status 1, no traceback."""

    def show(self, file=None) -> None:
        click.echo(f"oneha: {self.message}", file=file, err=True)


class _Group(click.Group):
    """The top-level group: the one place a command's "Redis is away" becomes one line."""

    def invoke(self, ctx: click.Context):
        from kombu.exceptions import OperationalError

        from .adapters.store import UNAVAILABLE, redis_cause, unreachable
        from .errors import Transient
        try:
            return super().invoke(ctx)
        except (Transient, OperationalError, *UNAVAILABLE) as exc:
            cause = redis_cause(exc)
            if cause is None:  # OpenNebula, say: the error already says what was away
                raise Unavailable(f"{exc}; try again later") from None
            raise Unavailable(unreachable(ctx.obj.settings.redis_url, cause)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="oneha", prog_name="oneha")
@click.option("-c", "--config", "config_path", envvar="ONEHA_CONFIG",
              type=click.Path(dir_okay=False), help="YAML configuration (default: $ONEHA_CONFIG).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """oneha — OpenNebula high-availability alerting and remediation gateway."""
    ctx.obj = Context(config_path)


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(main)


if __name__ == "__main__":
    sys.exit(main())
