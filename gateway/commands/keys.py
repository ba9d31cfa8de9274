"""`oneha keys new FRONTEND` — a new signing key for a front-end's hook sender, and the two places
it goes: the gateway's configuration (`ingest.frontends.<name>.keys`) and the sender's
configuration file on that front-end (`/etc/one/oneha-hook.conf`, read by oneha-hook)."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import click

SENDER_CONFIG = "/etc/one/oneha-hook.conf"
SPOOL_DIR = "/var/lib/one/oneha/spool"
LOG_FILE = "/var/log/one/oneha-hook.log"
KEY_BYTES = 32  # 256 bits, as long as the HMAC-SHA256 block needs no more
FRONTEND_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def register(main: click.Group) -> None:
    main.add_command(keys)


def new_key() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def sender_config(frontend: str, key: str, urls: list[str]) -> str:
    """The oneha-hook configuration for `frontend` (hook_templates/README.md lists the keys)."""
    return (f"# oneha-hook configuration for front-end {frontend} (install -m 0600 -o oneadmin)\n"
            f"urls      = {', '.join(urls)}\n"
            f"key       = {key}\n"
            f"frontend  = {frontend}\n"
            f"spool_dir = {SPOOL_DIR}\n"
            f"timeout   = 3\n"
            f"log_file  = {LOG_FILE}\n")


def write_private(path: str | os.PathLike, text: str) -> Path:
    """Write `text` readable by its owner only (it holds the key), replacing the file atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def check_frontend(name: str) -> str:
    if not FRONTEND_NAME.match(name):
        raise click.BadParameter("a front-end name is 1-64 letters, digits, '.', '_' or '-' "
                                 "(it is sent in a header and named in metrics)",
                                 param_hint="FRONTEND")
    return name


def gateway_urls(settings, given: tuple[str, ...]) -> list[str]:
    urls = list(given) or [settings.public_url]
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{url!r} is not an http(s):// URL of a gateway",
                                     param_hint="--url")
    return urls


@click.group()
def keys() -> None:
    """Signing keys of the front-ends' hook senders."""


@keys.command("new")
@click.argument("frontend")
@click.option("--url", "urls", multiple=True, metavar="URL",
              help="A gateway the sender posts to (repeat for several; default: public_url).")
@click.option("--write-sender-config", "write_to", default=None, metavar="PATH",
              type=click.Path(dir_okay=False),
              help=f"Also write the sender's configuration there (0600), e.g. {SENDER_CONFIG}.")
@click.pass_obj
def new_cmd(obj, frontend: str, urls: tuple[str, ...], write_to: str | None) -> None:
    """Print a new key for FRONTEND and the configuration of both sides.

    The key is printed, never stored by oneha: add it to the gateway's configuration, then give
    the sender its configuration. During a rotation keep the old key listed until every sender
    uses the new one (several keys are valid at once)."""
    check_frontend(frontend)
    settings = obj.settings
    endpoints = gateway_urls(settings, urls)
    key = new_key()
    known = settings.ingest.frontends.get(frontend)
    click.echo(f"key for front-end {frontend}: {key}\n")
    click.echo("# 1. the gateways (oneha.yaml), then restart them:")
    current = [f'"{k.get_secret_value()[:4]}…"' for k in known.keys] if known else []
    listed = ", ".join([f'"{key}"', *current])
    click.echo(f"ingest:\n  frontends:\n    {frontend}:\n      keys: [{listed}]")
    if known:
        click.echo(f"#    ({len(known.keys)} key(s) of {frontend} already configured, shown "
                   "abridged: keep them until every sender signs with the new one)")
    if re.fullmatch(r"[a-z0-9_]+", frontend):  # the variable's name is lower-cased back
        click.echo(f"#    or in the environment (it replaces the file's keys of {frontend}): "
                   f"ONEHA_FRONTEND_{frontend.upper()}_KEYS={key}")
    click.echo()
    click.echo(f"# 2. the sender on {frontend} ({SENDER_CONFIG}, mode 0600, owner oneadmin):")
    text = sender_config(frontend, key, endpoints)
    click.echo(text, nl=False)
    if write_to:
        path = write_private(write_to, text)
        click.echo(f"\nwrote {path} (0600)")
