"""Celery's Redis transport, with one repair so a worker outlives a Redis restart.

When a worker loses Redis in the middle of a task acknowledged late (every task of ours with
effects), Celery (5.x, up to its main branch in 2026) collects the broken connection and then
closes it again. The collect already detached the transport from its connection; the close
finds the default channel still open and requeues its unacknowledged messages, and the channel
rebuilds its Redis pool from the detached connection's settings: `AttributeError: 'NoneType'
object has no attribute 'hostname'` in kombu's `Channel._connparams`. Celery counts an
AttributeError as unrecoverable and the worker shuts down for good. The same happens later to
the late acknowledgement of a task that ran through the outage: its message belongs to the old,
closed channel.

Here a channel whose connection is gone says so with a connection error, which is what kombu
and Celery expect of a broken broker: the close gives up requeueing (Redis is away anyway; the
messages stay in the `unacked` hash and come back after the visibility timeout), the late
acknowledgement is logged as one that could not be made (the message comes back and its task,
which claims its effects first, finds them done), and the worker reconnects.

`SentinelTransport` is kombu's Sentinel transport with the same repair: a worker whose primary
fails over loses its connections exactly as in a restart, and reconnects by asking the sentinels
where the primary is now.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class _KnowsItsConnectionIsGone:
    def _connparams(self, asynchronous: bool = False):
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Channel(_KnowsItsConnectionIsGone, kombu_redis.Channel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(_KnowsItsConnectionIsGone, kombu_redis.SentinelChannel):
    pass


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel
