"""The cache API on a Redis that refuses writes: full (``maxmemory``, ``noeviction``) or a
read-only replica during a failover. On every Redis profile (private servers started with
their limit, ``redis_factory(profile=..., settings=...)``: the Azure profiles refuse CONFIG).

What must hold (apps/cache_api/write_refusals.py): a tag the pod has loaded is served from
that load (``x-cache: degraded``), one dataset load per episode and pod however many
requests come, the pod stays ready and says why, and normal caching resumes by itself,
without a second load, once Redis accepts writes again.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests.apps.cache_api.conftest import PROFILES, TEST_TAGS, loads, serve, settings_for
from tests.apps.redis_fill import free, overfill
from tests.apps.redis_server import free_port

FULL = {"maxmemory": "4mb", "maxmemory-policy": "noeviction"}


def _expected(sample_dataset) -> dict[str, object]:
    return {tag: json.loads((sample_dataset / f"{tag}.json").read_text()) for tag in TEST_TAGS}


def _tag_keys(server, settings) -> int:
    with server.client() as r:
        return sum(r.exists(f"{settings.cache_key_prefix}:tag:{tag}") for tag in TEST_TAGS)


async def _wait_ready_plain(client: httpx.AsyncClient, timeout: float = 10.0) -> dict:
    """Poll /readyz (each call may start the write retry) until the pod is no longer degraded."""
    deadline = time.monotonic() + timeout
    while True:
        body = (await client.get("/readyz")).json()
        if "degraded" not in body or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("profile", PROFILES)
async def test_full_redis_one_load_per_pod_served_degraded_then_resumed(redis_factory, sample_dataset, profile):
    server = redis_factory(profile=profile, settings=FULL)
    overfill(server)
    expected = _expected(sample_dataset)
    # No in-process cache: every request goes to Redis and, on a miss, to the fill path.
    settings = settings_for(server, sample_dataset, local_cache_ttl_seconds=0, redis_write_retry_seconds=0.5)
    async with serve(settings) as (app_a, a), serve(settings) as (app_b, b):
        paths = [f"/github_stats/{TEST_TAGS[i % len(TEST_TAGS)]}" for i in range(60)]
        burst = await asyncio.gather(*((a, b)[i % 2].get(path) for i, path in enumerate(paths)))
        after = [await (a, b)[i % 2].get(path) for i, path in enumerate(paths)]
        for path, response in zip(paths * 2, burst + after, strict=True):
            assert response.status_code == 200, response.text
            assert response.headers["x-cache"] == "degraded"
            assert response.json() == expected[path.rsplit("/", 1)[1]]
        # One load per pod for the whole episode, not one per request.
        assert loads(app_a) == loads(app_b) == 1
        assert (await a.get("/github_stats/not-a-tag")).status_code == 404

        for client, app in ((a, app_a), (b, app_b)):
            ready = await client.get("/readyz")
            assert ready.status_code == 200, "a degraded pod stays in service"
            assert ready.json() | {"detail": None} == {"status": "ready", "degraded": "redis_refuses_writes",
                                                       "reason": "oom", "detail": None}
            assert "maxmemory" in ready.json()["detail"]
            metrics = app.state.metrics
            assert metrics.value("cache_degraded") == 1
            assert metrics.value("redis_write_refusals_total", {"reason": "oom"}) >= 1
            assert metrics.value("cache_hits_total", {"layer": "degraded"}) == 60
        assert _tag_keys(server, settings) == 0  # nothing was cached fleet-wide

        free(server)  # the queue drained, a TTL expired: Redis takes writes again
        for client, app in ((a, app_a), (b, app_b)):
            assert await _wait_ready_plain(client) == {"status": "ready"}
            assert app.state.metrics.value("cache_degraded") == 0
        assert _tag_keys(server, settings) == len(TEST_TAGS)  # the held load was written, not reloaded
        response = await a.get("/github_stats/python")
        assert response.status_code == 200 and response.headers["x-cache"] == "redis"
        assert loads(app_a) == loads(app_b) == 1


@pytest.mark.parametrize("profile", PROFILES)
async def test_dataset_write_refused_after_the_lock_is_served_not_reloaded(redis_factory, sample_dataset,
                                                                         profile, log_lines):
    """The case that stuck the loader: the lock is taken, then the dataset's SETs are refused. Before,
    each request failed 503 after the load and the next one loaded the dataset again."""
    server = redis_factory(profile=profile, settings=FULL)
    settings = settings_for(server, sample_dataset, local_cache_ttl_seconds=0,
                            dataset_load_delay_seconds=0.5, redis_write_retry_seconds=60)
    lock_key = f"{settings.cache_key_prefix}:lock:dataset"
    async with serve(settings) as (app, client):
        first = asyncio.create_task(client.get("/github_stats/rust"))
        deadline = time.monotonic() + 5
        with server.client() as r:
            while not r.exists(lock_key):
                assert time.monotonic() < deadline, "the loader never took the lock"
                await asyncio.sleep(0.01)
        overfill(server)  # while the pod reads the dataset
        responses = [await first] + [await client.get(f"/github_stats/{tag}") for tag in TEST_TAGS * 4]
        assert [r.status_code for r in responses] == [200] * len(responses)
        assert {r.headers["x-cache"] for r in responses} == {"degraded"}
        assert loads(app) == 1
        assert app.state.metrics.value("redis_write_refusals_total", {"reason": "oom"}) == 1
        with server.client() as r:
            assert not r.exists(lock_key), "the lock was released (the release script runs at maxmemory)"
    messages = [json.loads(line)["msg"] for line in log_lines]
    assert "dataset loaded into redis" not in messages
    assert sum("serving this pod's own dataset load" in m for m in messages) == 1  # once per episode


@pytest.mark.parametrize("profile", PROFILES)
async def test_uvicorn_fleet_on_a_full_redis_loads_once_per_process(redis_factory, sample_dataset,
                                                                    uvicorn_factory, profile):
    server = redis_factory(profile=profile, settings=FULL)
    overfill(server)
    env = {**server.env, "DATASET_DIR": str(sample_dataset), "LOCAL_CACHE_TTL_SECONDS": "0",
           "LOG_LEVEL": "WARNING"}
    fleet = uvicorn_factory.many([env] * 3)
    async with httpx.AsyncClient(timeout=20) as client:
        responses = await asyncio.gather(*(
            client.get(f"{fleet[i % 3].url}/github_stats/{TEST_TAGS[i % len(TEST_TAGS)]}") for i in range(150)))
        assert [r.status_code for r in responses] == [200] * 150
        assert {r.headers["x-cache"] for r in responses} == {"degraded"}
        total = 0.0
        for process in fleet:
            assert process.proc.poll() is None, "no process dies on a full Redis"
            assert (await client.get(f"{process.url}/readyz")).json()["degraded"] == "redis_refuses_writes"
            text = (await client.get(f"{process.url}/metrics")).text
            total += float(next(line for line in text.splitlines()
                                if line.startswith("dataset_loads_total ")).split()[1])
    assert total == 3.0, "one load per process, not one per request"


@pytest.mark.parametrize("profile", PROFILES)
async def test_read_only_replica_serves_its_own_load_and_resumes_after_the_failover(redis_factory,
                                                                                   sample_dataset, profile):
    """During a failover the endpoint can answer as a replica: reads work, writes get READONLY.
    Then the connection resets and a primary answers."""
    server = redis_factory(profile=profile, settings={"replicaof": f"127.0.0.1 {free_port()}"})
    settings = settings_for(server, sample_dataset, local_cache_ttl_seconds=0, redis_write_retry_seconds=0.5)
    async with serve(settings) as (app, client):
        responses = [await client.get(f"/github_stats/{tag}") for tag in TEST_TAGS * 3]
        assert [r.status_code for r in responses] == [200] * len(responses)
        assert {r.headers["x-cache"] for r in responses} == {"degraded"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["reason"] == "readonly"
        assert "read-only replica" in ready.json()["detail"]
        assert app.state.metrics.value("redis_write_refusals_total", {"reason": "readonly"}) >= 1

        del server.settings["replicaof"]  # the failover completes: a primary behind the endpoint
        server.restart()
        assert await _wait_ready_plain(client) == {"status": "ready"}
        response = await client.get("/github_stats/go")
        assert response.status_code == 200 and response.headers["x-cache"] == "redis"
        assert loads(app) == 1
        assert app.state.metrics.value("http_requests_total",
                                       {"route": "/github_stats/{tag}", "method": "GET", "status": "500"}) == 0
