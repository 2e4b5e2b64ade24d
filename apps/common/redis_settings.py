"""The Redis endpoint from the environment: the REDIS_* contract (docs/contract.md), for kombu and redis-py.

TLS always verifies the server certificate and host name (``REDIS_CA_FILE`` or the system
trust store); there is no setting that turns verification off. The broker URL never
carries TLS options, because kombu lets URL options override ``broker_use_ssl`` and a
bare ``rediss://`` without it connects unverified.

The credential never rides in a URL either: every client (redis-py's and kombu's) gets a
:class:`RedisCredentials` provider, which redis-py asks on every new connection. With
``REDIS_PASSWORD_FILE`` (the redis-auth Secret mounted as a volume, which the kubelet
updates in place) it reads the file each time, so a key replaced or a token renewed is
taken on the next reconnect, without a restart (docs/redis-targets.md, "Rotating the access
key"). ``REDIS_PASSWORD`` (local runs) is read once.
"""

from __future__ import annotations

import functools
import os
import socket
import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.exceptions import AuthenticationError
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


class RedisCredentials(CredentialProvider):
    """The credential for each new Redis connection: ``REDIS_USERNAME`` (an ACL user, e.g. an
    Entra object id; unset: the default user) and the password, read from ``password_file``
    on every call when there is one (a mounted Secret), else the fixed ``password``.

    A file that cannot be read or is empty is an :class:`AuthenticationError` (reason
    ``auth``: the process waits and reads it again), naming the variable, never the path's
    content. One trailing newline (``echo`` into a file, an editor) is not part of it.
    """

    def __init__(self, username: str | None = None, password: SecretStr | None = None,
                 password_file: Path | None = None):
        if (password is None) == (password_file is None):
            raise ValueError("RedisCredentials takes a password or a password file")
        self.username = username
        self._password = password
        self.password_file = password_file

    def __repr__(self) -> str:  # never the password
        source = "REDIS_PASSWORD_FILE" if self.password_file is not None else "REDIS_PASSWORD"
        return f"RedisCredentials(username={self.username!r}, from={source})"

    def password(self) -> str:
        if self._password is not None:
            return self._password.get_secret_value()
        assert self.password_file is not None
        try:
            value = self.password_file.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except (OSError, UnicodeError) as exc:
            raise AuthenticationError(f"REDIS_PASSWORD_FILE cannot be read ({type(exc).__name__})") from None
        if not value:
            raise AuthenticationError("REDIS_PASSWORD_FILE is empty")
        return value

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        password = self.password()
        return (self.username, password) if self.username else (password,)

    async def get_credentials_async(self) -> tuple[str] | tuple[str, str]:
        """The async clients' (the cache API): a small local file, read as the sync one does
        (redis-py's default logs a warning on every call)."""
        return self.get_credentials()


@functools.cache
def _entra_credentials() -> CredentialProvider:
    """One token provider per process: every client shares its token and its renewal."""
    from apps.common.entra import entra_credentials

    return entra_credentials()


class RedisSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, env_ignore_empty=True)

    redis_host: str = "localhost"
    redis_port: int = Field(6379, ge=1, le=65535)
    redis_password: SecretStr | None = None
    #: A file holding the password (the mounted redis-auth Secret), read on every new connection.
    redis_password_file: Path | None = None
    #: An ACL user name (Entra: the identity's object id); unset: Redis's default user.
    redis_username: str | None = None
    #: ``key``: the password (REDIS_PASSWORD or REDIS_PASSWORD_FILE); ``entra``: an Entra token
    #: of the pod's workload identity, renewed in the background (apps/common/entra.py).
    redis_sign_in: Literal["key", "entra"] = "key"
    redis_db: int = Field(0, ge=0)
    redis_tls: bool = False
    redis_ca_file: Path | None = None

    @model_validator(mode="after")
    def _check_ca_file(self) -> RedisSettings:
        if self.redis_ca_file is not None and not self.redis_ca_file.is_file():
            # Not the value: errors name the variable and the rule only (docs/contract.md).
            raise ValueError("REDIS_CA_FILE is not a readable file")
        if self.redis_password is not None and self.redis_password_file is not None:
            raise ValueError("set REDIS_PASSWORD or REDIS_PASSWORD_FILE, not both")
        if self.redis_sign_in == "entra":
            if self.redis_password is not None or self.redis_password_file is not None:
                raise ValueError("REDIS_SIGN_IN=entra signs in with a token: unset REDIS_PASSWORD and REDIS_PASSWORD_FILE")
            from apps.common.entra import missing_workload_identity

            missing = missing_workload_identity(os.environ)
            if missing:
                raise ValueError(f"REDIS_SIGN_IN=entra needs the workload identity's {', '.join(missing)}: label the "
                                 "pod azure.workload.identity/use=true and give its ServiceAccount the "
                                 "azure.workload.identity/client-id annotation (the webhook sets them)")
        if self.redis_password_file is not None and not self.redis_password_file.is_file():
            raise ValueError("REDIS_PASSWORD_FILE is not a readable file")
        return self

    def credentials(self) -> CredentialProvider | None:
        """The credential provider every client gets (``None``: Redis without a password)."""
        if self.redis_sign_in == "entra":
            return _entra_credentials()
        if self.redis_password is None and self.redis_password_file is None:
            return None
        return RedisCredentials(self.redis_username, self.redis_password, self.redis_password_file)

    @property
    def redis_url(self) -> str:
        """Broker URL. Never carries TLS options (those go to ``broker_use_ssl`` only), nor the
        credential: kombu's connections get :meth:`credentials` through
        :func:`broker_transport_options` (apps/common/redis_transport.py)."""
        scheme = "rediss" if self.redis_tls else "redis"
        return f"{scheme}://{self.redis_host}:{self.redis_port}/{self.redis_db}"

    def broker_transport_options(self) -> dict[str, Any]:
        """What kombu's transport (apps/common/redis_transport.py) needs beyond the URL."""
        return {"credential_provider": self.credentials()}

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
            "credential_provider": self.credentials(),
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
