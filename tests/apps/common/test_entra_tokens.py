"""``REDIS_SIGN_IN=entra`` (apps/common/entra.py): redis-entraid's token provider, renewing short
tokens in the background, keeps redis-py's and kombu's clients working against a real
redis-server whose ACL user takes each token as its password and drops the old ones.

Entra itself cannot be reached here. The identity provider below plays its part the way
Azure Managed Redis sees it: every token is a JWT naming the identity (``oid``) with a
lifetime; a new one becomes the Redis user's password; the one before last stops being
valid, and that user's connections are closed, as the service closes a connection whose
token expired. Everything else (redis-entraid's token manager, redis-py's re-auth and
reconnect, kombu's transport) is the real code the images run.
"""

from __future__ import annotations

import threading
import time

import jwt
import pytest
import redis
from kombu import Connection
from kombu.exceptions import OperationalError
from pydantic import ValidationError
from redis.auth.err import RequestTokenErr
from redis.auth.idp import IdentityProviderInterface
from redis.auth.token import JWToken
from redis.credentials import StreamingCredentialProvider

from apps.common.entra import entra_credentials
from apps.common.redis_errors import reason
from apps.common.redis_settings import RedisSettings
from apps.common.redis_transport import Transport

OID = "0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"  # an identity's object ID: the Redis user
LIFE_S = 3.0  # renewed at 70 %: every 2.1 s


class RotatingIssuer(IdentityProviderInterface):
    """The tests' identity provider (see the module docstring): one token at a time, a new one
    when the token manager renews it (``force_refresh``), as azure-identity hands them out."""

    def __init__(self, admin: redis.Redis):
        self.admin = admin
        self.issued: list[str] = []
        self.lock = threading.Lock()

    def request_token(self, force_refresh: bool = False) -> JWToken:
        with self.lock:
            now = time.time()
            # As azure-identity does: the cached token until a refresh is forced or it expired.
            if self.issued and not force_refresh and not JWToken(self.issued[-1]).is_expired():
                return JWToken(self.issued[-1])
            token = jwt.encode({"oid": OID, "iat": int(now), "exp": int(now + LIFE_S) + 1, "n": len(self.issued)},
                               "tests-only-signing-key-of-32-bytes!", algorithm="HS256")
            self.admin.acl_setuser(OID, enabled=True, passwords=[f"+{token}"], commands=["+@all"], keys=["*"],
                                   channels=["*"])
            if len(self.issued) >= 2:
                self.admin.acl_setuser(OID, enabled=True, passwords=[f"-{self.issued[-2]}"])
                self.admin.execute_command("CLIENT", "KILL", "USER", OID)
            self.issued.append(token)
            return JWToken(token)


def test_settings_choose_entra_without_a_password(monkeypatch, tmp_path):
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as unlabelled:
        RedisSettings(redis_host="redis.example", redis_sign_in="entra")
    assert "AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE" in str(unlabelled.value)
    assert "azure.workload.identity/use=true" in str(unlabelled.value)
    (tmp_path / "token").write_text("a-projected-service-account-token")
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-0000000000c1")
    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-0000000000a1")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(tmp_path / "token"))
    settings = RedisSettings(redis_host="redis.example", redis_sign_in="entra")
    assert isinstance(settings.credentials(), StreamingCredentialProvider)
    assert settings.credentials() is settings.credentials()  # one provider, one renewal, per process
    with pytest.raises(ValidationError, match="REDIS_SIGN_IN=entra signs in with a token"):
        RedisSettings(redis_sign_in="entra", redis_password="s3cret")
    monkeypatch.setenv("REDIS_SIGN_IN", "token")
    with pytest.raises(ValidationError, match="redis_sign_in"):
        RedisSettings()


def test_renewed_tokens_keep_both_client_kinds_working(redis_server):
    with redis.Redis(unix_socket_path=str(redis_server.unix_socket), password=redis_server.password) as admin:
        issuer = RotatingIssuer(admin)
        provider = entra_credentials(issuer)
        settings = RedisSettings(redis_host="127.0.0.1", redis_port=redis_server.port)
        client = redis.Redis(**settings.redis_client_kwargs(credential_provider=provider))
        broker = Connection(settings.redis_url, transport=Transport,
                            transport_options={**settings.broker_transport_options(), "credential_provider": provider})
        done, refused = 0, []
        try:
            start = time.monotonic()
            deadline = start + 4 * LIFE_S
            while time.monotonic() < deadline:
                for name, op in (("redis-py", lambda: client.incr("entra:ops")),
                                 ("kombu", lambda: broker.default_channel.client.incr("entra:ops"))):
                    for _attempt in range(3):  # a connection the "service" closed: the next one reconnects
                        try:
                            op()
                            done += 1
                            break
                        except (redis.RedisError, OperationalError) as exc:
                            if reason(exc) == "auth":
                                refused.append(f"{name} {time.monotonic() - start:.2f}s {len(issuer.issued)} {exc}")
                            time.sleep(0.05)
                    else:
                        pytest.fail(f"an operation failed three times in a row: {refused}")
                time.sleep(0.1)
            assert len(issuer.issued) >= 4, "the token was not renewed in the background"
            assert refused == []
            assert done >= 40
            users = {c["user"] for c in admin.client_list() if c.get("user") != "default"}
            assert users == {OID}
        finally:
            client.close()
            broker.release()
            admin.acl_deluser(OID)


class Unreachable(IdentityProviderInterface):
    """Entra out of reach (or the federation missing): every request fails as azure-identity's would."""

    def __init__(self):
        self.down = True
        self.inner: IdentityProviderInterface | None = None

    def request_token(self, force_refresh: bool = False) -> JWToken:
        if self.down:
            raise RequestTokenErr(ConnectionError("login.microsoftonline.com unreachable"))
        assert self.inner is not None
        return self.inner.request_token(force_refresh)


def test_no_token_is_auth_and_the_same_clients_work_once_tokens_come(redis_server):
    """redis-entraid's own RequestTokenErr killed the worker ("Unrecoverable error"); it is
    reason auth now, retried by the same clients until a token comes."""
    with redis.Redis(unix_socket_path=str(redis_server.unix_socket), password=redis_server.password) as admin:
        idp = Unreachable()
        provider = entra_credentials(idp)
        settings = RedisSettings(redis_host="127.0.0.1", redis_port=redis_server.port)
        client = redis.Redis(**settings.redis_client_kwargs(credential_provider=provider))
        broker = Connection(settings.redis_url, transport=Transport,
                            transport_options={**settings.broker_transport_options(), "credential_provider": provider})
        try:
            for op in (client.ping, lambda: broker.default_channel.client.ping()):
                with pytest.raises((redis.AuthenticationError, OperationalError)) as refused:
                    op()
                assert reason(refused.value) == "auth"
                assert "no Entra token for the workload identity" in str(refused.value)
            idp.inner, idp.down = RotatingIssuer(admin), False
            assert client.ping() and broker.default_channel.client.ping()
        finally:
            client.close()
            broker.release()
            admin.acl_deluser(OID)


class SlowEntra(Unreachable):
    """An identity provider that blocks, as azure-identity's HTTP request does, then fails."""

    def request_token(self, force_refresh: bool = False) -> JWToken:
        time.sleep(0.5)
        return super().request_token(force_refresh)


async def test_an_async_client_waiting_for_a_token_never_blocks_its_event_loop(redis_server):
    """The cache API's pools are async: a slow Entra must not freeze the loop (its /healthz timed out)."""
    import asyncio

    import redis.asyncio as aioredis

    provider = entra_credentials(SlowEntra())
    client = aioredis.Redis(host="127.0.0.1", port=redis_server.port, credential_provider=provider,
                            socket_connect_timeout=5)
    gaps: list[float] = []

    async def ticker():
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    beat = asyncio.create_task(ticker())
    try:
        with pytest.raises(redis.AuthenticationError) as refused:
            await client.ping()
        assert reason(refused.value) == "auth"
        # each token request blocks 0.5 s in its thread; the loop never stalled that long
        assert len(gaps) >= 15 and max(gaps) < 0.3, max(gaps)
    finally:
        beat.cancel()
        await client.aclose()
