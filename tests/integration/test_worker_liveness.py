"""A worker's absence is visible (`/readyz`, `/metrics`)."""

from __future__ import annotations

import re

import pytest

from gateway.adapters.store.workers import ALIVE_FOR
from gateway.app import create_app
from gateway.config import settings_from_dict
from tests.support.worker import test_config, wait_until

pytestmark = pytest.mark.slow


def readiness(client) -> dict:
    r = client.get("/readyz")
    assert r.status_code == 200, r.get_data()
    return r.get_json()


def workers_alive_metric(text: str) -> float:
    return float(re.search(r"^oneha_workers_alive (\S+)$", text, re.M).group(1))


def test_readyz_and_metrics_tell_which_workers_are_alive(key_prefix, workers, redis_url):
    config = test_config(key_prefix, redis_url=redis_url, raft={"enabled": False},
                         reconciler={"enabled": False})
    client = create_app(settings_from_dict(config, env={})).test_client()
    alone = readiness(client)
    assert alone["workers"] == [] and "no worker" in alone["warning"]
    assert workers_alive_metric(client.get("/metrics").get_data(as_text=True)) == 0

    first = workers.start(config, name="first")
    second = workers.start(config, name="second")
    both = wait_until(lambda: len(readiness(client)["workers"]) == 2 and readiness(client),
                      30, what="both workers reported")
    assert "warning" not in both and all(n.endswith("@localhost") for n in both["workers"])
    assert workers_alive_metric(client.get("/metrics").get_data(as_text=True)) == 2

    first.stop()  # a warm shutdown takes it off at once
    wait_until(lambda: len(readiness(client)["workers"]) == 1, ALIVE_FOR / 3,
               what="the stopped one gone")
    second.kill()  # SIGKILL: it says nothing; its reports just stop
    gone = wait_until(lambda: readiness(client)["workers"] == [] and readiness(client),
                      ALIVE_FOR + 15, what="the killed one counted as gone")
    assert "no worker" in gone["warning"]
    assert workers_alive_metric(client.get("/metrics").get_data(as_text=True)) == 0
