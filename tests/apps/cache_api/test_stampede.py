"""Stampede protection: many cold requests across a fleet sharing one Redis cause one dataset
load, on every Redis profile (``redis_any``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.apps.cache_api.conftest import TEST_TAGS, loads, serve, settings_for
from tests.apps.redis_profiles import PROFILE_NAMES


def _get_calls(server) -> int:
    """``GET`` calls the server has answered so far (``INFO commandstats``: CONFIG RESETSTAT is
    one of the admin commands the Azure profiles refuse)."""
    with server.client() as r:
        return r.info("commandstats").get("cmdstat_get", {}).get("calls", 0)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
async def test_200_concurrent_cold_requests_across_four_apps_load_once(profile, redis_factory, sample_dataset):
    # A server of its own: the GET count below is server-wide (INFO commandstats), and the
    # session's shared server also answers whatever an earlier test's process still sends.
    redis_any = redis_factory(profile=profile)
    # The load is slowed down so that every request really arrives while the cache is cold.
    # A long local TTL: a slow machine must not see an entry expire in the middle of the batch.
    # A prefix of this test's own: nothing another process might still write can warm its keys.
    settings = settings_for(redis_any, sample_dataset, dataset_load_delay_seconds=0.3,
                            local_cache_ttl_seconds=60, cache_key_prefix=f"stampede-{uuid.uuid4().hex[:8]}")
    expected = {tag: json.loads((sample_dataset / f"{tag}.json").read_text()) for tag in TEST_TAGS}
    async with AsyncExitStack() as stack:
        fleet = [await stack.enter_async_context(serve(settings)) for _ in range(4)]
        gets_before = _get_calls(redis_any)
        paths = [f"/github_stats/{TEST_TAGS[i % len(TEST_TAGS)]}" for i in range(190)]
        paths += ["/github_stats/not-a-tag"] * 10
        responses = await asyncio.gather(*(fleet[i % 4][1].get(path) for i, path in enumerate(paths)))

        assert sum(loads(app) for app, _ in fleet) == 1, "exactly one dataset load for the whole fleet"
        for path, response in zip(paths, responses, strict=True):
            tag = path.rsplit("/", 1)[1]
            if tag == "not-a-tag":
                assert response.status_code == 404
            else:
                assert response.status_code == 200, response.text
                assert response.json() == expected[tag]
        assert {r.headers.get("x-cache") for r in responses if r.status_code == 200} == {"fill"}
        with redis_any.client() as r:
            assert not r.exists(f"{settings.cache_key_prefix}:lock:dataset")
        # Each app coalesced its own requests: one GET per tag per app, not one per request.
        # 6 keys (the 5 tags and not-a-tag) x 4 apps, + 1 GET inside the lock's release script.
        gets = _get_calls(redis_any) - gets_before
        assert 4 * (len(TEST_TAGS) + 1) <= gets <= 4 * (len(TEST_TAGS) + 1) + 1, gets
        assert sum(a.state.metrics.value("cache_misses_total", {"layer": "redis"}) for a, _ in fleet) == 200


async def test_three_uvicorn_processes_share_one_load(redis_any, sample_dataset, uvicorn_factory):
    env = {**redis_any.env, "DATASET_DIR": str(sample_dataset), "DATASET_LOAD_DELAY_SECONDS": "0.5",
           "LOG_LEVEL": "WARNING", "CACHE_KEY_PREFIX": f"stampede-{uuid.uuid4().hex[:8]}"}
    servers = uvicorn_factory.many([env] * 3)
    # No keep-alive: on a loaded machine uvicorn may close an idle kept-alive socket under us.
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:
        responses = await asyncio.gather(*(
            client.get(f"{servers[i % 3].url}/github_stats/{TEST_TAGS[i % len(TEST_TAGS)]}") for i in range(200)
        ))
        assert [r.status_code for r in responses] == [200] * 200
        per_server = []
        for server in servers:
            text = (await client.get(f"{server.url}/metrics")).text
            line = next(line for line in text.splitlines() if line.startswith("dataset_loads_total "))
            per_server.append(float(line.split()[1]))
    assert sum(per_server) == 1.0, per_server
