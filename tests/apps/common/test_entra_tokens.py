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


def test_settings_choose_entra_without_a_password(monkeypatch):
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
