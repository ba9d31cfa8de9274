"""Sentinel URLs: parsed for the store and turned into kombu's broker URL; malformed ones refused
at load time with a message saying what is expected."""

import pytest

from gateway.config import ConfigError, settings_from_dict
from gateway.redis_urls import SentinelUrl, check, parse_sentinel
from tasks.app import broker_of


def test_a_sentinel_url_names_the_sentinels_the_primary_and_the_database():
    assert parse_sentinel("redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2,[::1]:26380"
                          "/oneha/2") == SentinelUrl(
        (("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380)), "oneha", 2, None, "s@cret")
    assert parse_sentinel("sentinel://h:1/m") == SentinelUrl((("h", 1),), "m", 0)


def test_the_broker_is_kombus_sentinel_transport_with_the_primarys_name():
    url, transport, options = broker_of("redis+sentinel://:pw@a:1,b:2/oneha/3")
    assert url == "sentinel://:pw@a:1/3;sentinel://:pw@b:2/3"
    assert transport == "tasks.broker:SentinelTransport" and options["master_name"] == "oneha"
    assert broker_of("redis://h:6379/0") == ("redis://h:6379/0", "tasks.broker:Transport", {})


@pytest.mark.parametrize("url, says", [
    ("http://h:6379", "must start with redis://"),
    ("localhost:6379", "must start with redis://"),
    ("redis+sentinel://h:26379", "names the monitored primary"),
    ("redis+sentinel:///oneha", "at least one sentinel"),
    ("redis+sentinel://h:x/oneha", "port is a number"),
    ("redis+sentinel://h:1/oneha/zero", "database of a Sentinel URL is a number"),
    ("redis+sentinel://h:1/a/b/c", "/<master name>[/db]"),
])
def test_a_malformed_redis_url_is_refused_when_the_configuration_loads(url, says):
    with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("]", r"\]")):
        check(url)
    with pytest.raises(ConfigError, match="redis_url"):
        settings_from_dict({"redis_url": url}, env={})
