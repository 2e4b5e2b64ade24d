"""Every byte the cache API sends Redis, the connection handshake included, is a command Redis
6.0 has (tests/apps/wire.py: a relay records the raw RESP stream of a whole session: probes,
a cold fill (lock, load, release), hot reads, a view, a 404)."""

from __future__ import annotations

import asyncio

from tests.apps.cache_api.conftest import serve, settings_for
from tests.apps.wire import names, problems, relay


async def test_the_whole_session_uses_only_redis_6_0_commands(redis_server, sample_dataset):
    with relay(redis_server.port) as wire:
        settings = settings_for(redis_server, sample_dataset, redis_port=wire.port, local_cache_ttl_seconds=0)
        async with serve(settings) as (_, client):
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/github_stats/python")).headers["x-cache"] == "fill"
            assert (await client.get("/github_stats/python")).headers["x-cache"] == "redis"
            assert (await client.get("/github_stats/go?sort=stars&limit=2")).status_code == 200
            assert (await client.get("/github_stats/nope")).status_code == 404
        await asyncio.sleep(0.1)  # the relay has forwarded everything
        commands = wire.commands()
    sent = names(commands)
    assert {"HELLO", "CLIENT SETNAME", "PING", "GET", "MGET", "SET", "MULTI", "EXEC"} <= sent, sent
    assert not problems(commands), sent
