"""`oneha user add` / `oneha token add` write hashes into the config file, keeping the rest of
the file as written; the gateway built from that file lets the new user log in and the token in."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from gateway.app import create_app
from gateway.cli import main
from gateway.config import load_settings
from tests.support.auth import csrf_of

CONFIG = """\
# the on-call gateway
redis_url: {redis_url}   # local Redis
key_prefix: "{key_prefix}"
secret_key: test-secret

route:
  group_wait: 5s  # keep
"""


def test_user_and_token_are_written_as_hashes_and_let_their_holders_in(tmp_path, redis_url,
                                                                        key_prefix):
    path = tmp_path / "oneha.yaml"
    path.write_text(CONFIG.format(redis_url=redis_url, key_prefix=key_prefix))
    run = CliRunner().invoke
    out = run(main, ["-c", str(path), "user", "add", "maria", "--role", "approver",
                     "--language", "pt-BR"], input="a long password\na long password\n")
    assert out.exit_code == 0, out.output
    out = run(main, ["-c", str(path), "token", "add", "grafana", "--role", "viewer"])
    assert out.exit_code == 0, out.output
    secret = out.output.strip().splitlines()[-1]
    text = path.read_text()
    assert "# the on-call gateway" in text and "# local Redis" in text and "# keep" in text
    assert "a long password" not in text and secret not in text
    auth = yaml.safe_load(text)["auth"]
    assert auth["users"][0]["password_hash"].startswith("scrypt:")
    assert [(t["name"], t["role"]) for t in auth["tokens"]] == [("grafana", "viewer")]

    app = create_app(load_settings(path, env={}))
    client = app.test_client()
    assert client.get("/v1/incidents", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert client.get("/v1/incidents", headers={"Authorization": "Bearer " + secret[:-1] + "x"}
                      ).status_code == 401
    r = client.post("/login", data={"name": "maria", "password": "a long password",
                                    "csrf_token": csrf_of(client.get("/login").data)})
    assert r.status_code == 303
    assert client.get("/v1/incidents").status_code == 200

    # Changing the password ends the sessions made with the old one; the role may change too.
    out = run(main, ["-c", str(path), "user", "add", "maria", "--role", "viewer",
                     "--password-stdin"], input="another long one\n")
    assert out.exit_code == 0 and "changed user maria" in out.output
    fresh = create_app(load_settings(path, env={})).test_client()
    fresh.set_cookie("oneha_session", client.get_cookie("oneha_session").value)
    assert fresh.get("/v1/incidents").status_code == 401
    assert load_settings(path, env={}).auth.user("maria").role == "viewer"
    listed = run(main, ["-c", str(path), "user", "list"]).output
    assert "maria" in listed and "grafana" in listed and "scrypt" not in listed


def test_user_add_refuses_a_short_password_and_needs_a_file(tmp_path):
    path = tmp_path / "oneha.yaml"
    run = CliRunner().invoke
    out = run(main, ["-c", str(path), "user", "add", "bob", "--role", "admin", "--password-stdin"],
              input="short\n")
    assert out.exit_code != 0 and "at least 10 characters" in out.output
    assert not path.exists()
    out = run(main, ["user", "add", "bob", "--role", "admin", "--password-stdin"],
              input="long enough pw\n", env={"ONEHA_CONFIG": ""})
    assert out.exit_code != 0 and "oneha -c FILE" in out.output
    out = run(main, ["-c", str(path), "user", "add", "bob", "--role", "admin", "--password-stdin"],
              input="long enough pw\n")
    assert out.exit_code == 0 and oct(path.stat().st_mode & 0o777) == "0o600"
