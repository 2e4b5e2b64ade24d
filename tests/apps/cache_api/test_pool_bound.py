"""The cache API's share of the connection budget (components/connections.py), measured on a
real uvicorn process: its Redis pool never holds more than ``REDIS_MAX_CONNECTIONS`` however
many requests arrive (and reaches it under load, so the bound is what counts), on every
Redis profile; with the replica sidecar, the primary sees the pool plus one replication
link, and the reads stay on the replica."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from components import connections
from tests.apps.cache_api.conftest import PROFILES, TEST_TAGS
from tests.apps.client_count import ClientSampler

POOL = 3  # below the 5 tags a burst reads at once (one Redis read per tag per process)


async def _burst(url: str, requests: int = 120) -> list[int]:
    # No keep-alive: on a loaded machine uvicorn may close an idle kept-alive socket under us.
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        responses = await asyncio.gather(*(
            client.get(f"{url}/github_stats/{TEST_TAGS[i % len(TEST_TAGS)]}" if i % 10 else f"{url}/readyz")
            for i in range(requests)))
    return [r.status_code for r in responses]


@pytest.mark.parametrize("profile", PROFILES)
async def test_the_pool_bound_holds_under_load(redis_factory, sample_dataset, uvicorn_factory, profile):
    server = redis_factory(profile=profile)
    api = uvicorn_factory({**server.env, "DATASET_DIR": str(sample_dataset), "LOCAL_CACHE_TTL_SECONDS": "0",
                           "REDIS_MAX_CONNECTIONS": str(POOL), "LOG_LEVEL": "WARNING"})
    with ClientSampler(server) as sampler:
        for _ in range(2):
            assert set(await _burst(api.url)) == {200}
    assert sampler.peak == POOL, dict(sampler.at_peak)


async def test_the_replica_sidecar_adds_one_link_to_the_primary(redis_factory, replica_factory, sample_dataset,
                                                                uvicorn_factory):
    redis_server = redis_factory()  # private: the session's shared server may hold other tests' clients
    replica = replica_factory(redis_server)
    env = {**redis_server.env, "DATASET_DIR": str(sample_dataset), "LOCAL_CACHE_TTL_SECONDS": "0",
           "REDIS_MAX_CONNECTIONS": str(POOL), "REDIS_READ_HOST": "127.0.0.1", "REDIS_READ_PORT": str(replica.port),
           "LOG_LEVEL": "WARNING"}
    api = uvicorn_factory(env)
    assert set(await _burst(api.url, 50)) == {200}  # the dataset is loaded (on the primary)
    with ClientSampler(redis_server) as on_primary, ClientSampler(replica) as on_replica:
        for _ in range(2):
            assert set(await _burst(api.url)) == {200}
    assert on_primary.replicas == connections.CACHE_API_SIDECAR_LINK
    # Reads went to the replica; the primary saw at most the pool and the link.
    assert on_primary.peak <= POOL + connections.CACHE_API_SIDECAR_LINK, dict(on_primary.at_peak)
    assert on_replica.peak == POOL, dict(on_replica.at_peak)
