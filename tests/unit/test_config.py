from pathlib import Path

import pytest

from gateway.config import load_settings, settings_from_dict
from gateway.domain.model import parse_duration
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value, seconds", [(30, 30.0), ("30s", 30.0), ("1.5m", 90.0),
                                            ("250ms", 0.25), ("2h", 7200.0)])
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


def test_errors_name_the_key_and_the_fix():
    with pytest.raises(ConfigError) as err:
        settings_from_dict({"ingest": {"timestamp_window": "soon"}, "recievers": []}, env={})
    text = str(err.value)
    assert "ingest.timestamp_window" in text and "duration like 30s" in text
    assert "recievers: unknown key" in text


def test_secrets_come_from_the_environment_and_stay_masked():
    s = settings_from_dict({}, env={"ONEHA_FRONTEND_FE1_KEYS": "k1,k2", "REDIS_URL": "redis://r:1/2",
                                    "ONEHA_ONE_SESSION": "oneadmin:secret"})
    assert [k.get_secret_value() for k in s.ingest.frontends["fe1"].keys] == ["k1", "k2"]
    assert s.redis_url == "redis://r:1/2"
    assert "secret" not in repr(s.opennebula)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_example_configuration_is_valid():
    s = load_settings(ROOT / "oneha.example.yaml", env={})
    assert s.receivers, "the example should show at least one receiver"


def test_receiver_names_are_unique():
    with pytest.raises(ConfigError, match="repeated: ops"):
        settings_from_dict({"receivers": [{"name": "ops", "urls": ["json://a"]},
                                          {"name": "ops", "urls": ["json://b"]}]}, env={})


def test_config_check_warns_about_valid_but_unsafe_settings():
    from gateway.commands.server import config_warnings
    warnings = config_warnings(settings_from_dict({}, env={}))
    assert any("secret_key is the default" in w for w in warnings)
    assert any("no receivers" in w for w in warnings)
    assert any("no ingest.frontends" in w for w in warnings)
    assert config_warnings(load_settings(ROOT / "oneha.example.yaml", env={
        "ONEHA_SECRET_KEY": "s3cr3t-long-enough"})) == []
