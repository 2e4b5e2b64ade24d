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
bounded backoff (apps/worker/runtime.py). Every connection also
gets one quick retry instead of redis-py's silent backoff of up to 10 s
(``one_quick_retry``). The worker's transport (apps/worker/broker.py) builds on this one;
the producer uses it as it is.
"""

from __future__ import annotations

from kombu.exceptions import OperationalError
from kombu.transport import redis as kredis

from apps.common.redis_errors import REFUSED
from apps.common.redis_settings import handshake_6_0, one_quick_retry

#: The transport for ``broker_transport`` (``module:Class``).
TRANSPORT = "apps.common.redis_transport:Transport"


class Channel(kredis.Channel):
    def _connparams(self, asynchronous=False):
        params = super()._connparams(asynchronous=asynchronous)
        params.update(handshake_6_0(), retry=one_quick_retry())
        return params


class Transport(kredis.Transport):
    Channel = Channel
    connection_errors = (*kredis.Transport.connection_errors, *REFUSED, OperationalError)
