"""Receivers and the worker fail while messages are due: the SMTP server down and back, a chat
receiver answering 500 and then recovering, and the worker SIGKILLed while deliveries are
outstanding. Each host is told exactly once per receiver, nothing acknowledged is lost.

ONEHA_FAULT_SMTP_DOWN sets how long the SMTP server stays down (default 20 s; the issue's figure
is a minute — the retries (30 attempts, backoff up to 3 s) outlast either)."""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.faults.harness import Rig
from tests.faults.table import ROWS
from tests.support.worker import wait_until

pytestmark = pytest.mark.slow

HOSTS, VMS = 4, 49  # 200 events
EVENTS = HOSTS * (VMS + 1)
SMTP_DOWN = float(os.environ.get("ONEHA_FAULT_SMTP_DOWN", "20"))
# What the worker logs of a delivery round (tasks/notify.py's return value).
CHAT_RECORDED = re.compile(r":chat', 'urls': \{'\w+': 'delivered on attempt")
MAIL_RETRYING = re.compile(r":mail', 'urls': \{'\w+': 'attempt 1 of \d+ failed")


def _chat_told_every_host(rig: Rig) -> bool:
    return {f"{h:02d}" for h in range(1, HOSTS + 1)} <= set(rig.firing_by_host("chat"))


def _worker_log(rig: Rig) -> str:
    return (rig.base / "logs" / "worker.log").read_text(errors="replace")


@pytest.mark.timeout(300)  # real processes: minutes on a loaded machine
def test_the_smtp_server_down_then_back(tmp_path):
    with Rig(tmp_path) as rig:
        rig.smtp.stop()  # connections refused from the start of the burst
        down_at = time.monotonic()
        burst = rig.burst(HOSTS, VMS).join()
        wait_until(lambda: _chat_told_every_host(rig), 60, what="chat told every host")
        assert rig.smtp.messages == []
        wait_until(lambda: time.monotonic() - down_at >= SMTP_DOWN, SMTP_DOWN + 5, interval=0.5,
                   what=f"{SMTP_DOWN:.0f} s down")
        rig.smtp.start()  # the same port
        rig.settle(HOSTS, timeout=120)
        row = rig.row(f"SMTP server down {SMTP_DOWN:.0f} s, then back", EVENTS,
                      burst.acknowledged)
    ROWS.append(row)
    assert burst.acked == EVENTS
    assert (row.lost, row.doubled) == (0, 0), row


@pytest.mark.timeout(300)  # real processes: minutes on a loaded machine
def test_a_chat_receiver_answering_500_then_recovering(tmp_path):
    with Rig(tmp_path) as rig:
        rig.chat.fail_next(2 * HOSTS)  # every host's first two attempts
        burst = rig.burst(HOSTS, VMS).join()
        rig.settle(HOSTS)
        failed = [a for a in rig.chat.attempts if a.status == 500]
        row = rig.row("chat receiver answers 500, then recovers", EVENTS, burst.acknowledged)
    ROWS.append(row)
    assert burst.acked == EVENTS and len(failed) == 2 * HOSTS
    assert (row.lost, row.doubled) == (0, 0), row


# A follow-up delivery is a Celery message with a countdown, held by the worker that scheduled
# it; killed, that worker takes it along, and kombu's Redis transport restores it from `unacked`
# after the visibility timeout (120 s, tasks/app.py): the mail comes late, once, never lost.
@pytest.mark.timeout(420)
def test_the_worker_killed_while_deliveries_are_outstanding(tmp_path):
    with Rig(tmp_path) as rig:
        rig.smtp.stop()
        burst = rig.burst(HOSTS, VMS).join()
        # Chat has been told, and the worker has recorded it (killed between the receiver's 200
        # and that record, a message is sent again: the one gap at-least-once leaves, see
        # flows/delivery.py); every mail has failed and waits for its next attempt.
        wait_until(lambda: len(CHAT_RECORDED.findall(_worker_log(rig))) >= HOSTS, 60,
                   what="chat told every host, and recorded")
        wait_until(lambda: len(MAIL_RETRYING.findall(_worker_log(rig))) >= HOSTS, 30,
                   what="every mail attempted and waiting for its retry")
        assert rig.smtp.messages == []
        rig.kill("worker")
        killed_at = time.monotonic()
        rig.smtp.start()
        assert [name for name, _ in rig.revive()] == ["worker"]
        rig.settle(HOSTS, timeout=300)
        print(f"mail told every host {time.monotonic() - killed_at:.0f} s after the kill")
        row = rig.row("worker SIGKILL mid-delivery (mail retrying)", EVENTS, burst.acknowledged)
    ROWS.append(row)
    assert burst.acked == EVENTS
    assert (row.lost, row.doubled) == (0, 0), row
