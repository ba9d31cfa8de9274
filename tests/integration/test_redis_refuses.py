"""A Redis that refuses the gateway outright (protected mode's `-DENIED`, a replica's
`-MASTERDOWN`) is a Redis that is away: 503 with the JSON error shape, never a 500."""

from __future__ import annotations

import socket
import threading

import pytest

from gateway.app import create_app
from gateway.config import settings_from_dict


class RefusingRedis:
    """Answers every command line with one error reply, as a refusing Redis does."""

    def __init__(self, reply: bytes):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):
                conn.sendall(self.reply)

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("reply, said", [
    (b"-DENIED Redis is running in protected mode because protected mode is enabled\r\n",
     "protected mode"),
    (b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n",
     "MASTER is down"),
], ids=["protected-mode", "masterdown"])
def test_a_refusing_redis_is_a_503_on_readyz_and_metrics(reply, said):
    server = RefusingRedis(reply)
    try:
        settings = settings_from_dict({"redis_url": f"redis://127.0.0.1:{server.port}/0",
                                       "ingest": {"frontends": {"fe1": {"keys": ["k" * 32]}}}},
                                      env={})
        client = create_app(settings).test_client()
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.get_data(as_text=True)
        assert ready.get_json()["error"] == "redis_unreachable"
        assert said in ready.get_json()["detail"]
        health = client.get("/metrics")
        assert health.status_code == 503 and health.get_json()["error"] == "redis_unreachable"
    finally:
        server.close()
