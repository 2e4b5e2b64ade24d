"""Async Redis clients that fail fast and heal themselves.

- Short connect/read timeouts and a single immediate retry (redis-py's default retries
  ten times with backoff, which turns "Redis is down" into a multi-second hang).
  The one retry reconnects a pooled connection that died while Redis restarted.
- A blocking pool with a bound: when every connection is busy a request waits at most
  the socket timeout instead of opening connections without limit.
- TLS always verifies the certificate and the host name (``REDIS_CA_FILE`` or the
  system trust store); there is no switch to turn verification off.
- Only what Redis 6.0 (Azure Cache for Redis 6.0.14) knows, from the first byte: redis-py
  8 also sends ``CLIENT SETINFO`` (Redis 7.2) and ``CLIENT MAINT_NOTIFICATIONS`` (Redis 8)
  on every new connection and ignores the error an older server answers. Both are off.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    RedisError,
)

from apps.cache_api.settings import Settings
from apps.common.redis_errors import describe
from apps.common.redis_settings import handshake_6_0, tcp_keepalive_options

REPLICA_PING_TIMEOUT_SECONDS = 0.3


def _pool_kwargs(settings: Settings, host: str, port: int, tls: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "db": settings.redis_db,
        # Read again on every new connection: a rotated key or token is taken without a restart.
        "credential_provider": settings.credentials(),
        "socket_connect_timeout": settings.redis_connect_timeout_seconds,
        "socket_timeout": settings.redis_socket_timeout_seconds,
        "retry": Retry(NoBackoff(), retries=1),
        "max_connections": settings.redis_max_connections,
        "timeout": settings.redis_socket_timeout_seconds,
        "client_name": "cache-api",
        # The platform's Redis socket settings (apps/common/redis_settings.py): the Redis 6.0
        # handshake and TCP keepalive, as every other client.
        **handshake_6_0(),
        "socket_keepalive": True,
        "socket_keepalive_options": tcp_keepalive_options(),
        "connection_class": Connection,
    }
    if tls:
        kwargs |= {
            "connection_class": SSLConnection,
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_ca_certs": str(settings.redis_ca_file) if settings.redis_ca_file else None,
            "ssl_min_version": ssl.TLSVersion.TLSv1_2,
        }
    return kwargs


def make_client(settings: Settings, host: str, port: int, tls: bool) -> Redis:
    return Redis.from_pool(BlockingConnectionPool(**_pool_kwargs(settings, host, port, tls)))


@dataclass
class RedisClients:
    """``primary``: writes, the loader lock, the fill wait. ``reader``: cache reads (may be the primary).

    When a separate reader fails, reads fall back to the primary (see ``TagCache``): a
    restarting replica sidecar degrades the pod, it does not take it out of service.
    """

    primary: Redis
    reader: Redis

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisClients:
        primary = make_client(settings, settings.redis_host, settings.redis_port, settings.redis_tls)
        if settings.redis_read_host is None:
            return cls(primary=primary, reader=primary)
        # The read replica is a sidecar on loopback, plain TCP (docs/contract.md).
        assert settings.redis_read_port is not None
        reader = make_client(settings, settings.redis_read_host, settings.redis_read_port, tls=False)
        return cls(primary=primary, reader=reader)

    @property
    def has_replica(self) -> bool:
        return self.reader is not self.primary

    async def ping(self) -> str | None:
        """Raises if the primary is unreachable; returns the replica's problem, if any (reads fall back).

        The replica gets ``REPLICA_PING_TIMEOUT_SECONDS``, not the socket timeout and its retry:
        a hung replica must not make ``/readyz`` outlast the kubelet's probe timeout (1 s by
        default), which would take the pod out of service for a replica it can do without.
        """
        await self.primary.ping()
        if self.has_replica:
            try:
                await asyncio.wait_for(self.reader.ping(), REPLICA_PING_TIMEOUT_SECONDS)
            except TimeoutError:
                return "timed out"
            except RedisError as exc:
                return describe(exc)
        return None

    async def aclose(self) -> None:
        await self.primary.aclose()
        if self.reader is not self.primary:
            await self.reader.aclose()
