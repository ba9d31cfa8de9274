"""Connections the event store keeps for its one command per event (see `KeptConnections`)."""

from __future__ import annotations

import os
from collections import deque

import redis


class KeptConnections:
    """Connections of the client's settings (URL, auth, TLS, timeouts) that the event store keeps
    for itself instead of borrowing one from redis-py's pool per event: the pool's borrow probes
    each connection for unread data (a non-blocking read, one more system call) and records
    metrics, and the client wraps every command in retry and parsing layers — measured: ~40 µs of
    the ~700 µs of CPU an 8 KB event costs the gateway. Safe without the probe because a
    connection is put back only after its whole answer was read; after any other error it is
    closed. As many are kept as requests ran at once (a gunicorn worker's threads).

    With a Sentinel URL the connections are Sentinel-managed: each new one asks the sentinels
    where the primary is, and one still open to a primary that was demoted turns its READONLY
    answer into a connection error (redis-py's `SentinelManagedConnection`); either error drops
    every kept connection, so the retry in `EventStore.record` reaches the new primary.
    """

    def __init__(self, client: redis.Redis):
        pool = client.connection_pool
        self._class, self._kwargs = pool.connection_class, pool.connection_kwargs
        self._idle: deque = deque()  # append/pop are atomic: no lock needed
        self._pid = os.getpid()

    def call(self, *commands: tuple) -> list:
        """Send the commands in one write and return their answers, in order (an error answer is
        raised, as redis-py does, once every answer was read)."""
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours to use
            self._idle, self._pid = deque(), os.getpid()
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = self._new()
        answers, error = [], None
        try:
            conn.send_packed_command([b"".join(map(_resp_command, commands))], check_health=False)
            for _ in commands:
                try:
                    answers.append(conn.read_response())
                except redis.exceptions.ResponseError as exc:
                    error = error or exc  # read on: the connection stays in step
                    answers.append(None)
        except BaseException as exc:
            conn.disconnect()
            if isinstance(exc, redis.exceptions.ConnectionError):
                self._idle.clear()  # the others are likely dead too (Redis restarted)
            raise
        self._idle.append(conn)  # every answer was read in full: the connection is fine
        if error is not None:
            raise error
        return answers

    def _new(self):
        """A connected connection. Connected here, by `connect()`, not implicitly by the first
        send: a Sentinel-managed connection finds the primary in `connect()`, and the implicit
        path skips it and would dial the class's default, localhost:6379."""
        conn = self._class(**self._kwargs)
        conn.connect()
        return conn


def _resp_command(command: tuple) -> bytes:
    """A command in Redis's wire format, in one buffer (redis-py's `pack_command` grows its
    buffer one argument at a time, and chunks large ones)."""
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg.encode("utf-8") if isinstance(arg, str) else str(arg).encode("ascii")
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)
