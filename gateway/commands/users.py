"""`oneha user add|remove|list` and `oneha token add|remove`: who may log in, and which
machines may call the API — written into the configuration file's `auth:` section (only hashes:
a password as werkzeug's scrypt, a token as its SHA-256). The gateway reads its configuration at
start: restart it (or send gunicorn a HUP) after a change."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.commands.output import echo_list
from gateway.domain.auth import NAME_PATTERN, ROLES

MIN_PASSWORD = 10


def register(main: click.Group) -> None:
    main.add_command(user)
    main.add_command(token)


def _config_path(obj) -> Path:
    if not obj.config_path:
        raise click.ClickException("say which configuration file to write: oneha -c FILE ... "
                                   "(or set ONEHA_CONFIG)")
    return Path(obj.config_path)


def _auth(path: Path) -> dict:
    from gateway.config_file import read_mapping
    auth = read_mapping(path).get("auth") or {}
    if not isinstance(auth, dict):
        raise click.ClickException(f"auth: in {path} must be a mapping")
    return {**auth, "users": list(auth.get("users") or []), "tokens": list(auth.get("tokens") or [])}


def _save(path: Path, auth: dict) -> None:
    from gateway.config_file import write_section
    from gateway.errors import ConfigError
    try:
        write_section(path, "auth", auth)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _check_name(name: str) -> None:
    import re
    if not re.fullmatch(NAME_PATTERN, name):
        raise click.ClickException("a name is 1 to 64 letters, digits or . _ @ -")


@click.group()
def user() -> None:
    """People who log in to the console (viewer, approver, admin)."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="viewer: read; approver: also approve/deny, ack, silence; admin: everything.")
@click.option("--language", type=click.Choice(["en", "pt-BR"]), default=None,
              help="The console's language for this user (default: the browser's).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_obj
def user_add(obj, name: str, role: str, language: str | None, password_stdin: bool) -> None:
    """Add NAME (or change their role or password)."""
    import sys

    from werkzeug.security import generate_password_hash
    _check_name(name)
    path = _config_path(obj)
    auth = _auth(path)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"password for {name}", hide_input=True,
                                confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise click.ClickException(f"a password has at least {MIN_PASSWORD} characters")
    entry = {"name": name, "role": role, "password_hash": generate_password_hash(password)}
    if language:
        entry["language"] = language
    existed = any(u.get("name") == name for u in auth["users"])
    auth["users"] = [u for u in auth["users"] if u.get("name") != name] + [entry]
    _save(path, auth)
    click.echo(f"{'changed' if existed else 'added'} user {name} ({role}) in {path}; restart the "
               "gateway to apply")


@user.command("remove")
@click.argument("name")
@click.pass_obj
def user_remove(obj, name: str) -> None:
    """Remove NAME: their sessions end at the gateway's next start."""
    path = _config_path(obj)
    auth = _auth(path)
    kept = [u for u in auth["users"] if u.get("name") != name]
    if len(kept) == len(auth["users"]):
        raise click.ClickException(f"no user {name} in {path}")
    _save(path, {**auth, "users": kept})
    click.echo(f"removed user {name} from {path}; restart the gateway to apply")


@user.command("list")
@click.pass_obj
def user_list(obj) -> None:
    """Users and API tokens of the configuration (names and roles, never hashes)."""
    auth = obj.settings.auth
    echo_list(auth.users, "no users: oneha -c FILE user add NAME --role admin",
              lambda u: f"{u.name:<24} {u.role:<9} user", header="NAME                     ROLE      KIND")
    for t in auth.tokens:
        click.echo(f"{t.name:<24} {t.role:<9} token")


@click.group()
def token() -> None:
    """Bearer tokens for the HTTP API (Authorization: Bearer <token>)."""


@token.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.pass_obj
def token_add(obj, name: str, role: str) -> None:
    """Make a token NAME; it is printed once, the configuration keeps only its SHA-256."""
    from gateway.domain.auth import new_token, token_digest
    _check_name(name)
    path = _config_path(obj)
    auth = _auth(path)
    if any(t.get("name") == name for t in auth["tokens"]):
        raise click.ClickException(f"a token {name} exists: oneha token remove {name} first")
    secret = new_token()
    auth["tokens"].append({"name": name, "role": role, "sha256": token_digest(secret)})
    _save(path, auth)
    click.echo(f"added token {name} ({role}) to {path}; restart the gateway to apply.")
    click.echo("The token (shown once; keep it where the client keeps secrets):")
    click.echo(secret)


@token.command("remove")
@click.argument("name")
@click.pass_obj
def token_remove(obj, name: str) -> None:
    path = _config_path(obj)
    auth = _auth(path)
    kept = [t for t in auth["tokens"] if t.get("name") != name]
    if len(kept) == len(auth["tokens"]):
        raise click.ClickException(f"no token {name} in {path}")
    _save(path, {**auth, "tokens": kept})
    click.echo(f"removed token {name} from {path}; restart the gateway to apply")
