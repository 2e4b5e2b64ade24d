"""The cache API under a key that changes (docs/redis-targets.md, "Rotating the access key"): the
same app, with the same pools, is not ready and says why (``auth``) while Redis refuses the old
key, and is ready again once the mounted file holds the new one. No restart, no echo."""

from __future__ import annotations

import asyncio
import time

import redis

from apps.common.redis_errors import AUTH_SAYS
from tests.apps.cache_api.conftest import serve, settings_for

NEW = "rotated-key-not-a-secret"


async def _until(client, path: str, status: int, within: float) -> float:
    start = time.monotonic()
    while True:
        if (await client.get(path)).status_code == status:
            return time.monotonic() - start
        assert time.monotonic() - start < within, f"{path} never answered {status} within {within} s"
        await asyncio.sleep(0.2)


async def test_a_replaced_key_is_refused_as_auth_then_taken_from_the_file(redis_server, sample_dataset, tmp_path):
    secret = tmp_path / "redis-auth" / "password"
    secret.parent.mkdir()
    secret.write_text(redis_server.password + "\n")
    settings = settings_for(redis_server, sample_dataset, redis_password=None, redis_password_file=secret)
    async with serve(settings) as (_, client):
        await _until(client, "/github_stats/python", 200, within=15)
        with redis.Redis(unix_socket_path=str(redis_server.unix_socket), password=redis_server.password) as admin:
            admin.config_set("requirepass", NEW)
            admin.client_kill_filter(_type="normal", skipme=True)
        try:
            await _until(client, "/readyz", 503, within=10)
            ready = await client.get("/readyz")
            assert ready.json()["detail"] == AUTH_SAYS
            assert NEW not in ready.text and redis_server.password not in ready.text
            secret.write_text(NEW + "\n")  # what the kubelet does when redis-auth changes
            took = await _until(client, "/readyz", 200, within=15)
            await _until(client, "/github_stats/python", 200, within=5)
            assert took < 15
        finally:
            with redis.Redis(unix_socket_path=str(redis_server.unix_socket), password=NEW) as admin:
                admin.config_set("requirepass", redis_server.password)
