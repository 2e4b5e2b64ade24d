"""The Redis endpoint from the environment: the REDIS_* contract (docs/contract.md), for kombu and redis-py.

TLS always verifies the server certificate and host name (``REDIS_CA_FILE`` or the system
trust store); there is no setting that turns verification off. The broker URL never
carries TLS options, because kombu lets URL options override ``broker_use_ssl`` and a
bare ``rediss://`` without it connects unverified.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.backoff import NoBackoff
from redis.maint_notifications import MaintNotificationsConfig
from redis.retry import Retry


def one_quick_retry() -> Retry:
    """redis-py retries a failed command or connect 3 times with a backoff of up to 10 s by
    default, silently: a process waiting for Redis would block for tens of seconds, with no
    heartbeat and no log. One immediate retry (a stale pooled connection) and then the error:
    the apps' own loops wait for Redis, visibly (apps/common/redis_wait.py)."""
    return Retry(NoBackoff(), 1)


def handshake_6_0() -> dict[str, Any]:
    """redis-py connection keywords that keep its handshake to Redis 6.0 commands: no
    ``CLIENT SETINFO`` (Redis 7.2) and no ``CLIENT MAINT_NOTIFICATIONS`` (Redis 8). redis-py
    sends both on every new connection and ignores the error an older server answers;
    Azure Cache for Redis is 6.0.14 (docs/redis-targets.md)."""
    return {"driver_info": None, "maint_notifications_config": MaintNotificationsConfig(enabled=False)}


#: TCP keepalive on every Redis socket: an idle connection whose path vanished without a reset
#: (a lost NAT or conntrack entry; Azure's load balancers drop idle flows after 4 minutes,
#: Azure Redis after 10) is found in KEEPIDLE + KEEPCNT x KEEPINTVL = 45 s, and one whose sent
#: bytes go unacknowledged fails after USER_TIMEOUT. Options Linux lacks are left out.
TCP_KEEPALIVE = {"TCP_KEEPIDLE": 30, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 3, "TCP_USER_TIMEOUT": 15_000}


def tcp_keepalive_options() -> dict[int, int]:
    """``socket_keepalive_options`` for redis-py and kombu: option number -> value."""
    return {getattr(socket, name): value for name, value in TCP_KEEPALIVE.items() if hasattr(socket, name)}


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, env_ignore_empty=True)

    redis_host: str = "localhost"
    redis_port: int = Field(6379, ge=1, le=65535)
    redis_password: SecretStr | None = None
    redis_db: int = Field(0, ge=0)
    redis_tls: bool = False
    redis_ca_file: Path | None = None

    @model_validator(mode="after")
    def _check_ca_file(self) -> RedisSettings:
        if self.redis_ca_file is not None and not self.redis_ca_file.is_file():
            # Not the value: errors name the variable and the rule only (docs/contract.md).
            raise ValueError("REDIS_CA_FILE is not a readable file")
        return self

    @property
    def redis_url(self) -> str:
        """Broker URL. Never carries TLS options: those go to ``broker_use_ssl`` only."""
        scheme = "rediss" if self.redis_tls else "redis"
        auth = f":{quote(self.redis_password.get_secret_value(), safe='')}@" if self.redis_password else ""
        return f"{scheme}://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}"

    def ssl_options(self) -> dict[str, Any] | None:
        """``broker_use_ssl``: certificate verification always required with TLS."""
        if not self.redis_tls:
            return None
        opts: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True}
        if self.redis_ca_file is not None:
            opts["ssl_ca_certs"] = str(self.redis_ca_file)
        return opts

    def redis_client_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The same endpoint for plain redis-py clients; ``overrides`` set timeouts etc."""
        kwargs: dict[str, Any] = {
            "host": self.redis_host, "port": self.redis_port, "db": self.redis_db,
            "password": self.redis_password.get_secret_value() if self.redis_password else None,
            "socket_timeout": 10, "socket_connect_timeout": 10, "health_check_interval": 25,
            "socket_keepalive": True, "socket_keepalive_options": tcp_keepalive_options(),
            "retry": one_quick_retry(), **handshake_6_0(),
        }
        if self.redis_tls:
            kwargs.update(ssl=True, ssl_cert_reqs="required", ssl_check_hostname=True)
            if self.redis_ca_file is not None:
                kwargs["ssl_ca_certs"] = str(self.redis_ca_file)
        kwargs.update(overrides)
        return kwargs
