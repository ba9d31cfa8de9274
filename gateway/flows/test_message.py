"""A test message to a receiver's URLs, sent now and directly (no Redis, no worker): what
`oneha send-test` and the console's configuration page both do while someone sets oneha up,
so either answers at once with each URL's result (URLs masked)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from gateway.adapters.notifier import Notifier, SendResult
from gateway.config import Receiver
from gateway.domain.messages import render
from gateway.domain.notifications import Notification


@dataclass(frozen=True)
class SentTest:
    receiver: str
    kind: str  # mail | chat
    result: SendResult


def send_test(receivers: list[Receiver], send_timeout: float) -> list[SentTest]:
    """One test message per URL of each receiver, in that receiver's language and kind."""
    notifier = Notifier(timeout=send_timeout)
    run = uuid.uuid4().hex[:8]
    out = []
    for receiver in receivers:
        n = Notification(notification_id=f"test-{run}:test:0:{receiver.name}",
                         receiver=receiver.name, transition="test",
                         incident={"id": f"test-{run}", "title": "oneha test notification",
                                   "headline": {"key": "test_message"}},
                         created_at=time.time())
        for secret in receiver.urls:
            url = secret.get_secret_value()
            kind = receiver.kind_of(url)
            out.append(SentTest(receiver.name, kind,
                                  notifier.send(url, render(n, kind, receiver.language))))
    return out
