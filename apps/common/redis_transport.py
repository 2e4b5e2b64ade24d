"""kombu's Redis transport with a Redis 6.0 handshake, and Redis's passing conditions
counted as connection errors.

redis-py 8 sends ``CLIENT SETINFO`` (Redis 7.2) and, over RESP3, ``CLIENT
MAINT_NOTIFICATIONS`` (Redis 8) on every new connection and ignores the error older
servers answer. Azure Cache for Redis is 6.0.14: the apps send only commands that Redis
6.0 has, handshake included (docs/redis-targets.md), so every connection kombu opens turns
both off.

``connection_errors`` is what Celery's consumer recovers from (it reconnects and starts its
bootsteps again; anything else is "Unrecoverable error" and the worker exits) and what
kombu's publish retries. kombu lists the socket-level errors only, so a full Redis
(``OOM``: Celery's queue declaration, kombu's unacked mutex), a replica during a failover
(``READONLY``), ``MASTERDOWN``, and kombu's own ``OperationalError`` (what
``Connection.default_channel`` raises when a connection fails, e.g. with
``max number of clients reached`` while Celery's Mingle step opens its own) killed the
worker. They are added here (apps/common/redis_errors.py says which); every other reply
error stays a channel error. The worker's consumer waits between those reconnects with a
bounded backoff (apps/worker/consumer.py). Every connection also
gets one quick retry instead of redis-py's silent backoff of up to 10 s
(``one_quick_retry``).

kombu reads its pub/sub connection (Celery's remote control: ``celery inspect``) from the
event loop when the poller says the socket is readable, with redis-py's blocking read, and
redis-py 8 reads a blocking pub/sub reply with no timeout at all. When the poller's wake-up
belongs to a connection kombu has just dropped as stale (after a path that answered
nothing), redis-py reconnects and waits for a message nobody sends: the worker's main loop
stopped for good, its tasks' results untaken (docs/worker.md, "In an outage").
``BoundedPubSub`` reads only what is there, and waits at most ``socket_timeout`` for the rest
of a reply. The worker's transport (apps/worker/broker.py) builds on this one; the
producer's (``PublishTransport``) is this one without the connection-level retry, so kombu
pipelines its publish batches.
"""

from __future__ import annotations

from functools import cached_property

from kombu.exceptions import OperationalError
from kombu.transport import redis as kredis
from redis.client import PubSub

from apps.common.redis_errors import REFUSED
from apps.common.redis_settings import handshake_6_0, one_quick_retry


class BoundedPubSub(PubSub):
    """A pub/sub whose blocking read returns at once when nothing is there, and otherwise
    waits at most the connection's ``socket_timeout`` (redis-py 8: forever)."""

    def parse_response(self, block=True, timeout=0):
        limit = self.connection_pool.connection_kwargs.get("socket_timeout")
        if not block or limit is None:
            return super().parse_response(block=block, timeout=timeout)
        conn = self.connection
        if conn is not None and conn._sock is not None and not conn.can_read(timeout=0):
            return None  # woken for a socket with nothing to read: nothing to wait for
        # Not connected: redis-py connects and subscribes again; the reply is bounded too.
        return super().parse_response(block=False, timeout=limit)


class Channel(kredis.Channel):
    def _connparams(self, asynchronous=False):
        params = super()._connparams(asynchronous=asynchronous)
        params.update(handshake_6_0(), retry=one_quick_retry())
        # The credential: the provider of the settings (apps/common/redis_settings.py,
        # ``broker_transport_options``), asked on every new connection, so a key or token that
        # changed is read again on the reconnect. kombu 5.7 takes a provider only as a
        # ``Connection`` argument or a URL query, neither of which Celery passes.
        provider = self.connection.client.transport_options.get("credential_provider")
        if provider is not None:
            params["credential_provider"] = provider
            params.pop("username", None)
            params.pop("password", None)
        return params

    @cached_property
    def subclient(self):
        """kombu's pub/sub client, with reads that cannot outwait the socket timeout."""
        client = self._create_client(asynchronous=True)
        return BoundedPubSub(client.connection_pool,
                             event_dispatcher=getattr(client, "_event_dispatcher", None))


class Transport(kredis.Transport):
    Channel = Channel
    connection_errors = (*kredis.Transport.connection_errors, *REFUSED, OperationalError)


class PublishChannel(Channel):
    """The producer's: no connection-level retry. kombu sends a publish batch (one pipeline)
    only over connections that never retry on their own, since a pipeline retried after a
    lost reply is an ambiguous replay; the producer's publisher retries whole batches itself,
    with the same task ids (apps/producer/publisher.py)."""

    def _connparams(self, asynchronous=False):
        params = super()._connparams(asynchronous=asynchronous)
        params.pop("retry", None)
        return params


class PublishTransport(Transport):
    Channel = PublishChannel


#: The producer's transport (``module:Class``).
PUBLISH_TRANSPORT = "apps.common.redis_transport:PublishTransport"

