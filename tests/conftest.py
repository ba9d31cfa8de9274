import uuid

import pytest
import redis

from tests.support.procs import RedisServer

SHARED_REDIS = "redis://127.0.0.1:6379/0"

pytest_plugins = ["tests.support.fixtures", "tests.support.worker"]  # smtp_sink, chat_sink; workers


@pytest.fixture
def redis_url():
    """The machine's Redis; each test gets its own key prefix (see `key_prefix`)."""
    client = redis.Redis.from_url(SHARED_REDIS)
    client.ping()
    yield SHARED_REDIS


@pytest.fixture
def key_prefix(redis_url):
    prefix = f"oneha-test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def own_redis(tmp_path):
    """A private redis-server on a free port; the test may stop or kill it."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop(kill=True)
