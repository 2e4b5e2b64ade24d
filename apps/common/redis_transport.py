"""kombu's Redis transport with a Redis 6.0 handshake.

redis-py 8 sends ``CLIENT SETINFO`` (Redis 7.2) and, over RESP3, ``CLIENT
MAINT_NOTIFICATIONS`` (Redis 8) on every new connection and ignores the error older
servers answer. Azure Cache for Redis is 6.0.14: the apps send only commands that Redis
6.0 has, handshake included (docs/redis-targets.md), so every connection kombu opens turns
both off. The worker's transport (apps/worker/broker.py) builds on this one; the producer
uses it as it is.
"""

from __future__ import annotations

from kombu.transport import redis as kredis

from apps.common.redis_settings import handshake_6_0

#: The transport for ``broker_transport`` (``module:Class``).
TRANSPORT = "apps.common.redis_transport:Transport"


class Channel(kredis.Channel):
    def _connparams(self, asynchronous=False):
        params = super()._connparams(asynchronous=asynchronous)
        params.update(handshake_6_0())
        return params


class Transport(kredis.Transport):
    Channel = Channel
