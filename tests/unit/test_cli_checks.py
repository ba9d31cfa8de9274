"""`oneha --version`, and `oneha config check` finding a receiver URL no message could reach
(it used to accept `notaprotocol://foo`; only `send-test` found it)."""

from importlib.metadata import version

import yaml
from click.testing import CliRunner

from gateway.cli import main


def check(tmp_path, urls):
    path = tmp_path / "oneha.yaml"
    path.write_text(yaml.safe_dump({"receivers": [{"name": "oncall", "urls": urls}]}))
    return CliRunner().invoke(main, ["-c", str(path), "config", "check"])


def test_version_is_the_package_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"oneha, version {version('oneha')}\n"


def test_a_receiver_url_apprise_cannot_send_to_is_an_error_naming_receiver_and_scheme(tmp_path):
    result = check(tmp_path, ["notaprotocol://secret-token@foo", "json://127.0.0.1:9/x"])
    assert result.exit_code == 1
    assert result.stdout.startswith("configuration 1 error(s)")
    assert "receiver oncall, URL 1: apprise does not understand notaprotocol:// URLs" in \
        result.stderr
    assert "secret-token" not in result.stdout + result.stderr  # the URL's secrets stay hidden


def test_receiver_urls_apprise_understands_pass(tmp_path):
    result = check(tmp_path, ["json://127.0.0.1:9/x", "mailto://127.0.0.1:2525?mode=insecure"
                                                      "&to=ops@example.com&from=oneha@example.com"])
    assert result.exit_code == 0 and result.stdout.startswith("configuration OK")
