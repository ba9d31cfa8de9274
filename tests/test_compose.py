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
    assert svc["image"] == "oneha:latest"


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


def test_services_are_hardened(resolved):
    """Read-only root, no capability, no privilege gain; only /tmp and Redis' /data writable."""
    for name, svc in resolved["services"].items():
        assert svc["read_only"] is True, name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert svc["restart"] == "unless-stopped", name
    for name in ONEHA_SERVICES:
        assert any(t.split(":")[0] == "/tmp" for t in resolved["services"][name]["tmpfs"]), name
    assert resolved["services"]["redis"]["user"] == "redis"  # no chown at start: no CAP_CHOWN


def test_base_images_are_arguments_a_site_can_pin(resolved):
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M)
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BUILD_IMAGE}", "${BASE_IMAGE}"]
    pinned = compose_config({**SECRETS, "ONEHA_BASE_IMAGE": "python@sha256:" + "a" * 64,
                             "ONEHA_REDIS_IMAGE": "redis@sha256:" + "b" * 64})
    services = yaml.safe_load(pinned.stdout)["services"]
    assert services["gateway"]["build"]["args"]["BASE_IMAGE"] == "python@sha256:" + "a" * 64
    assert services["redis"]["image"] == "redis@sha256:" + "b" * 64


@pytest.mark.parametrize("service", ONEHA_SERVICES)
def test_every_oneha_service_checks_its_health_with_oneha_health(resolved, service):
    assert resolved["services"][service]["healthcheck"]["test"] == ["CMD", "oneha", "health"]
    assert 'CMD ["oneha", "health"]' in DOCKERFILE.read_text()  # the image's own HEALTHCHECK
    assert resolved["services"]["gateway"]["ports"][0]["target"] == 8080


def test_health_picks_its_check_from_what_process_1_runs(monkeypatch, tmp_path):
    """`oneha health` in a gateway container asks /readyz on the port process 1 serves."""
    from click.testing import CliRunner

    from gateway.commands import server
    monkeypatch.setattr(server, "_pid1_argv", lambda: ["oneha", "serve", "--port", "1"])
    result = CliRunner().invoke(oneha_cli, ["health"])
    assert result.exit_code == 1 and "serve: unhealthy" in result.output
    assert "/readyz" in result.output
    monkeypatch.setattr(server, "_pid1_argv", lambda: ["sh"])
    result = CliRunner().invoke(oneha_cli, ["health"])
    assert result.exit_code == 1 and "cannot tell what process 1 runs" in result.output


def test_dockerfile_is_multi_stage_non_root_and_leaves_the_simulator_out():
    text = DOCKERFILE.read_text()
    assert "FROM ${BUILD_IMAGE} AS builder" in text
    assert "COPY --from=builder /opt/oneha /opt/oneha" in text
    assert re.search(r"^USER (?!root|0\b)\w+", text, re.M), "the services must not run as root"
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    allowed = [line[1:] for line in (ROOT / ".dockerignore").read_text().split()
               if line.startswith("!")]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages - set(allowed) == {"simulator"}, "the image gets every package but the simulator"
    assert {"hook_templates", "wheelhouse", "pyproject.toml"} <= set(allowed)
    assert (ROOT / ".dockerignore").read_text().split()[0] == "#" and "*" in \
        (ROOT / ".dockerignore").read_text().split(), "an allow-list: secrets never reach a build"


def test_the_cli_knows_every_command_compose_uses():
    assert {"serve", "worker", "beat"} <= set(oneha_cli.commands), \
        f"missing from `oneha`: {sorted({'serve', 'worker', 'beat'} - set(oneha_cli.commands))}"
    assert isinstance(oneha_cli, click.Group)
