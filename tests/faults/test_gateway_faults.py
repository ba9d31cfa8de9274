"""The gateway is SIGKILLed (master and workers) in the middle of a burst sent by the real hook
sender, one `oneha-hook` process per event as oned runs them: while it is down the sender spools
(and exits 0, so oned is never blocked); once it is back, `oneha-hook --flush` replays the spool.
Every event the sender took reaches its incident; each host is told once per receiver."""

from __future__ import annotations

import threading
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.harness import Rig, Sender, hook_tokens
from tests.faults.table import ROWS
from tests.support.worker import wait_until

pytestmark = pytest.mark.slow

HOSTS, VMS = 4, 49  # 200 events, 200 sender processes


@pytest.mark.timeout(300)  # real processes: minutes on a loaded machine
def test_gateway_killed_mid_burst_the_sender_spools_and_flushes(tmp_path):
    with Rig(tmp_path) as rig:
        sender = Sender(rig, tmp_path / "spool")
        tokens = hook_tokens(HOSTS, VMS)
        done: list[tuple[str, int]] = []
        lock = threading.Lock()
        resume = threading.Event()
        resume.set()

        def send(item):
            key, token = item
            resume.wait()
            code = sender.run(token)
            with lock:
                done.append((key, code))

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, t) for t in tokens]
            wait_until(lambda: len(done) >= len(tokens) // 3, 120, what="a third sent")
            rig.kill("gateway")
            wait_until(lambda: len(sender.spooled()) >= 20, 60, what="20 events spooled")
            resume.clear()  # oned would go on running hooks; here, hold them while we restart
            rig.revive()
            resume.set()
            for f in futures:
                f.result()
        assert all(code == 0 for _, code in done), [c for _, c in done if c]  # oned never fails
        wait_until(lambda: sender.run("--flush") == 0 and not sender.spooled(), 60,
                   interval=0.5, what="the spool flushed")
        assert sender.rejected() == []
        rig.settle(HOSTS)
        have = rig.incident_objects()
        lost = sum(key not in have for key, _ in done) + rig.failed_to_apply()
        row = replace(rig.row("gateway SIGKILL mid-burst (sender spools, --flush)",
                              len(tokens), []), acknowledged=len(done), lost=lost)
    ROWS.append(row)
    assert (row.lost, row.doubled) == (0, 0), row
