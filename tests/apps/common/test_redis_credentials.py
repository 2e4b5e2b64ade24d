"""The credential every Redis client gets (apps/common/redis_settings.py, ``RedisCredentials``):
read from ``REDIS_PASSWORD_FILE`` on every new connection, so a key replaced in the mounted
Secret is taken on the next reconnect, by redis-py's clients and kombu's alike, without a
restart; a file that cannot be read is reason ``auth``, and nothing shows the password."""

from __future__ import annotations

import pytest
import redis
from kombu import Connection
from pydantic import ValidationError

from apps.common.redis_errors import reason
from apps.common.redis_settings import RedisCredentials, RedisSettings
from apps.common.redis_transport import Transport

NEW = "rotated-password-not-a-secret"


def settings_for(server, tmp_path, password: str | None = None) -> RedisSettings:
    secret = tmp_path / "redis-auth" / "password"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(password or server.password)
    return RedisSettings(redis_host="127.0.0.1", redis_port=server.port, redis_password_file=secret)


def test_the_file_is_read_on_every_call(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("first\n")
    creds = RedisCredentials(password_file=secret)
    assert creds.get_credentials() == ("first",)  # one trailing newline is not part of it
    secret.write_text("second")
    assert creds.get_credentials() == ("second",)
    assert RedisCredentials("app-user", password_file=secret).get_credentials() == ("app-user", "second")
    assert "second" not in repr(creds)


@pytest.mark.parametrize("content", [None, ""])
def test_a_missing_or_empty_file_is_auth_naming_the_variable(tmp_path, content):
    secret = tmp_path / "password"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(redis.AuthenticationError, match="REDIS_PASSWORD_FILE") as caught:
        RedisCredentials(password_file=secret).get_credentials()
    assert reason(caught.value) == "auth"


def test_settings_take_one_source_and_never_echo_it(tmp_path, monkeypatch):
    secret = tmp_path / "password"
    secret.write_text("file-s3cret")
    monkeypatch.setenv("REDIS_PASSWORD", "env-s3cret")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(secret))
    with pytest.raises(ValidationError) as both:
        RedisSettings()
    assert "not both" in str(both.value) and "s3cret" not in str(both.value)
    monkeypatch.delenv("REDIS_PASSWORD")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(ValidationError, match="REDIS_PASSWORD_FILE is not a readable file"):
        RedisSettings()
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(secret))
    settings = RedisSettings()
    assert "s3cret" not in settings.redis_url and "s3cret" not in repr(settings.broker_transport_options())
    assert settings.credentials().get_credentials() == ("file-s3cret",)


def test_a_replaced_key_is_taken_on_the_next_connection(redis_server, tmp_path):
    """Both client kinds the apps use, against a real server whose key is replaced and whose
    clients are killed: refused (``auth``) while the file holds the old key, working as soon as
    it holds the new one, with the same client objects."""
    settings = settings_for(redis_server, tmp_path)
    client = redis.Redis(**settings.redis_client_kwargs())
    broker = Connection(settings.redis_url, transport=Transport,
                        transport_options=settings.broker_transport_options())
    try:
        assert client.ping() and broker.default_channel.client.ping()
        with redis_server.client() as admin:
            admin.config_set("requirepass", NEW)
            admin.client_kill_filter(_type="normal", skipme=True)
        try:
            for ping in (client.ping, lambda: broker.default_channel.client.ping()):
                with pytest.raises(redis.AuthenticationError) as refused:
                    ping()
                assert reason(refused.value) == "auth"
            (tmp_path / "redis-auth" / "password").write_text(NEW + "\n")
            assert client.ping() and broker.default_channel.client.ping()
        finally:
            with redis.Redis(unix_socket_path=str(redis_server.unix_socket), password=NEW) as admin:
                admin.config_set("requirepass", redis_server.password)
    finally:
        client.close()
        broker.release()
