"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the file is valid for
docker-compose and for the compose-spec schema, and its services run real `oneha` commands."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import click
import jsonschema
import pytest
import yaml

from gateway.cli import main as oneha_cli

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
# The compose-spec schema as shipped by Debian's docker-compose 1.29 (compose/config/).
SCHEMA = ROOT / "tests" / "hook" / "compose_spec.json"
SECRETS = {"ONEHA_SECRET_KEY": "test-secret", "ONEHA_ONE_SESSION": "oneadmin:test"}
ONEHA_SERVICES = ("gateway", "worker", "beat")


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (make services installs it); the "
                    "compose-spec schema test below still validates the file")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ONEHA_")}
    return subprocess.run([binary, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                          env={**clean, **env}, cwd=ROOT, timeout=60)


@pytest.fixture(scope="module")
def resolved() -> dict:
    """The file as docker-compose resolves it (anchors merged, variables interpolated)."""
    result = compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_docker_compose_accepts_the_file(resolved):
    assert set(resolved["services"]) == {"redis", *ONEHA_SERVICES}


def test_secrets_must_come_from_the_environment():
    result = compose_config({"ONEHA_ONE_SESSION": "oneadmin:test"})
    assert result.returncode != 0
    assert "ONEHA_SECRET_KEY" in result.stderr


def test_file_is_valid_against_the_compose_spec_schema():
    schema = json.loads(SCHEMA.read_text())
    document = yaml.safe_load(COMPOSE.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    validator.validate(document)
    broken = {**document, "services": {"gateway": {"image": "x", "commandd": ["oneha"]}}}
    with pytest.raises(jsonschema.ValidationError):  # the schema does catch a typo
        validator.validate(broken)


def test_redis_is_durable(resolved):
    redis = resolved["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    data_dir = command[command.index("--dir") + 1]
    assert any(v["type"] == "volume" and v["target"] == data_dir for v in redis["volumes"])
    assert "redis-cli" in redis["healthcheck"]["test"]


@pytest.mark.parametrize("service", ONEHA_SERVICES)
def test_oneha_services_share_config_secrets_and_redis(resolved, service):
    svc = resolved["services"][service]
    env = svc["environment"]
    assert env["ONEHA_CONFIG"] == "/etc/oneha/oneha.yaml"
    assert env["ONEHA_REDIS_URL"] == "redis://redis:6379/0"
    assert env["ONEHA_SECRET_KEY"] == SECRETS["ONEHA_SECRET_KEY"]
    [mount] = svc["volumes"]
    assert (mount["type"], mount["target"], mount["read_only"]) == \
        ("bind", "/etc/oneha/oneha.yaml", True)
    assert Path(mount["source"]) == ROOT / "oneha.yaml"
    assert svc["depends_on"]["redis"]["condition"] == "service_healthy"
    assert svc["build"]["context"] == str(ROOT)


@pytest.mark.parametrize("service", ONEHA_SERVICES)
def test_services_run_real_oneha_commands(resolved, service):
    """Each command is parsed by the `oneha` CLI itself: a renamed command or option fails here."""
    command = resolved["services"][service]["command"]
    assert command[0] == "oneha"
    name, args = command[1], list(command[2:])
    assert name == ("serve" if service == "gateway" else service)
    group_ctx = click.Context(oneha_cli, info_name="oneha")
    sub = oneha_cli.get_command(group_ctx, name)
    assert sub is not None, f"`oneha {name}` does not exist"
    ctx = sub.make_context(name, args, parent=group_ctx)  # raises on an unknown option
    if name == "serve":
        # gunicorn (not --dev), reachable from other containers, on the port the checks use
        assert (ctx.params["host"], ctx.params["port"], ctx.params["dev"]) == ("0.0.0.0", 8080, False)


def test_gateway_healthcheck_asks_readyz_on_the_served_port(resolved):
    from gateway.app import create_app
    from gateway.config import settings_from_dict
    gateway = resolved["services"]["gateway"]
    probe = " ".join(gateway["healthcheck"]["test"])
    assert "http://127.0.0.1:8080/readyz" in probe
    assert gateway["ports"][0]["target"] == 8080
    routes = {r.rule for r in create_app(settings_from_dict({}, env={})).url_map.iter_rules()}
    assert "/readyz" in routes


def test_dockerfile_installs_every_package_of_the_distribution():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in includes}
    text = DOCKERFILE.read_text()
    copied = set(re.findall(r"^COPY (\S+) \./\1$", text, re.M))
    assert packages <= copied, f"not copied into the image: {packages - copied}"
    assert "hook_templates" in copied  # pyproject's data-files: <prefix>/share/oneha/hook_templates
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r"^USER (?!root)\w+", text, re.M), "the services must not run as root"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "oneha.yaml", ".env"} <= set(ignored)


def test_the_cli_knows_every_command_compose_uses():
    assert {"serve", "worker", "beat"} <= set(oneha_cli.commands), \
        f"missing from `oneha`: {sorted({'serve', 'worker', 'beat'} - set(oneha_cli.commands))}"
    assert isinstance(oneha_cli, click.Group)
