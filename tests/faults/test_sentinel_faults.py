"""The Redis primary is SIGKILLed mid-burst behind Sentinel (a primary, two replicas, three
sentinels on loopback): the sentinels promote a replica within ~2 s, the gateway, the worker and
the beat find it through them, and nothing acknowledged is lost (a 202 waits for a replica)."""

from __future__ import annotations

import os
import time

import pytest

from tests.faults.harness import Rig
from tests.faults.table import ROWS
from tests.support.sentinel import SentinelTopology
from tests.support.worker import wait_until

pytestmark = pytest.mark.slow

EVENTS = int(os.environ.get("ONEHA_FAULT_EVENTS", "500"))
HOSTS = 5
VMS = EVENTS // HOSTS - 1


@pytest.mark.timeout(300)
def test_the_redis_primary_killed_mid_burst_fails_over(tmp_path):
    with SentinelTopology(tmp_path) as topology, Rig(tmp_path, redis_url=topology.url) as rig:
        burst = rig.burst(HOSTS, VMS)
        wait_until(lambda: burst.acked >= EVENTS // 3, 120, what="a third acknowledged")
        old = topology.primary_port()
        started = time.monotonic()
        topology.kill_primary()
        print(f"failover: a new primary named {time.monotonic() - started:.1f} s after the kill")
        burst.join()
        assert topology.primary_port() != old
        assert burst.acked == EVENTS, burst.failures
        assert sum(burst.failures.values()), "no request failed: no fault seen"
        rig.settle(HOSTS)
        assert all(p.poll() is None for p in rig.procs.procs.values()), "a process gave up"
        row = rig.row("Sentinel failover: primary SIGKILL mid-burst", EVENTS, burst.acknowledged)
    ROWS.append(row)
    assert (row.lost, row.doubled) == (0, 0), row
