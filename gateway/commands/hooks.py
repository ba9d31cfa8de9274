"""`oneha hooks install | list | remove | sender-path` — oneha's state hooks in OpenNebula."""

from __future__ import annotations

import click

from gateway.commands.output import echo_list
from gateway.errors import ConfigError, OneHAError


def register(main: click.Group) -> None:
    main.add_command(hooks)


def connect(settings, endpoint: str | None = None):
    """The shared OpenNebula client (real timeouts; writes go to the Raft leader), limited to
    `endpoint` when one is given."""
    from gateway.adapters.opennebula import OpenNebula
    one = settings.opennebula
    return OpenNebula([endpoint] if endpoint else one.endpoints, one.session.get_secret_value(),
                      timeout=one.timeout, retries=one.retries)


def _server(obj, endpoint):
    try:
        return connect(obj.settings, endpoint)
    except (OneHAError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def hooks() -> None:
    """Install, list or remove oneha's hooks in OpenNebula (idempotent, by NAME)."""


_endpoint = click.option("--endpoint", default=None,
                         help="Only this XML-RPC endpoint (default: all of opennebula.endpoints).")


@hooks.command("install")
@click.option("--command", "command", default=None, metavar="PATH",
              help="Where the sender is installed on the front-end "
                   "(default: the templates' COMMAND, /var/lib/one/remotes/hooks/oneha/oneha-hook).")
@click.option("--templates", "templates", default=None, type=click.Path(file_okay=False),
              help="Directory of *.tmpl files (default: oneha's hook_templates/).")
@click.option("--dry-run", is_flag=True, help="Print the templates instead of installing them.")
@click.option("--sender-config", "sender_config", default=None, metavar="PATH",
              type=click.Path(dir_okay=False),
              help="Also write the sender's configuration (0600) for --frontend, with its first "
                   "configured key, e.g. /etc/one/oneha-hook.conf on that front-end.")
@click.option("--frontend", default=None, help="The front-end the sender's configuration is for.")
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="A gateway the sender posts to (repeat for several; default: public_url).")
@_endpoint
@click.pass_obj
def install_cmd(obj, command, templates, dry_run, sender_config, frontend, urls, endpoint) -> None:
    """Create oneha's hooks; re-running changes only what differs from the templates.

    With --sender-config, also write the configuration oneha-hook reads on the front-end."""
    from gateway.adapters import hooks as adapter
    if sender_config:
        _write_sender_config(obj.settings, sender_config, frontend, urls, dry_run)
    try:
        wanted = adapter.load_templates(templates, command)
        if dry_run:
            for t in wanted:
                click.echo(f"# {t.path}\n{t.render()}")
            return
        changes = adapter.install(_server(obj, endpoint), wanted)
    except OneHAError as exc:
        raise click.ClickException(str(exc)) from None
    for change in changes:
        click.echo(f"{change.action:9} {change.name} (id {change.hook_id}): {change.reason}")
    touched = sum(c.action != "unchanged" for c in changes)
    click.echo(f"{len(changes)} hook(s), {touched} changed")


@hooks.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also hooks that are not oneha's.")
@_endpoint
@click.pass_obj
def list_cmd(obj, show_all, endpoint) -> None:
    """Show the hooks installed in OpenNebula."""
    from gateway.adapters import hooks as adapter
    try:
        installed = adapter.list_hooks(_server(obj, endpoint), prefix="" if show_all else adapter.PREFIX)
    except OneHAError as exc:
        raise click.ClickException(str(exc)) from None
    echo_list(installed, "no hooks" if show_all else "no oneha hooks installed (oneha hooks install)",
              lambda h: f"{h.id:>4}  {h.name:36} {h.trigger:40} {h.command}",
              header=f"{'ID':>4}  {'NAME':36} {'TRIGGER':40} COMMAND")


@hooks.command("remove")
@click.argument("names", nargs=-1)
@_endpoint
@click.pass_obj
def remove_cmd(obj, names, endpoint) -> None:
    """Delete oneha's hooks (all, or the NAMES given)."""
    from gateway.adapters import hooks as adapter
    try:
        changes = adapter.remove(_server(obj, endpoint), names or None)
    except (OneHAError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    for change in changes:
        click.echo(f"removed   {change.name} (id {change.hook_id}): {change.reason}")
    click.echo(f"{len(changes)} hook(s) removed")


@hooks.command("sender-path")
def sender_path_cmd() -> None:
    """Print the path of the oneha-hook sender to copy to the front-ends."""
    from gateway.adapters import hooks as adapter
    try:
        click.echo(str(adapter.sender_path()))
    except OneHAError as exc:
        raise click.ClickException(str(exc)) from None


def _write_sender_config(settings, path: str, frontend: str | None, urls, dry_run: bool) -> None:
    from gateway.commands.keys import check_frontend, gateway_urls, sender_config, write_private
    if not frontend:
        raise click.UsageError("--sender-config needs --frontend NAME (whose key signs)")
    check_frontend(frontend)
    configured = settings.ingest.frontends.get(frontend)
    if configured is None:
        known = ", ".join(sorted(settings.ingest.frontends)) or "none"
        raise click.ClickException(f"front-end {frontend!r} has no key in ingest.frontends "
                                   f"(configured: {known}); `oneha keys new {frontend}` makes one")
    text = sender_config(frontend, configured.keys[0].get_secret_value(),
                         gateway_urls(settings, tuple(urls)))
    if dry_run:
        click.echo(f"# would write {path} (0600) for front-end {frontend}")
        return
    click.echo(f"wrote {write_private(path, text)} (0600) for front-end {frontend}")
