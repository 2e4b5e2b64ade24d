"""A dataset read that blocks (a FIFO in ``DATASET_DIR``: ``open()`` waits for a writer that
never comes, like a hung network volume) is cut off by ``DATASET_LOAD_TIMEOUT_SECONDS``:
every waiter answers 503 within the bound, the loader releases the fleet lock so another pod
can load, ``/readyz`` reports the stuck read, and SIGTERM still stops uvicorn in time."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.apps.cache_api.conftest import TEST_TAGS, loads, serve, settings_for

BOUND = 1.0  # DATASET_LOAD_TIMEOUT_SECONDS in these tests
SLACK = 1.0  # scheduling on a shared 2-core machine; the point is "about the bound", not FILL_WAIT (8 s)
GRACE = 30.0  # the pod's terminationGracePeriodSeconds


def unblock(fifo: Path) -> None:
    """Let a reader stuck in ``open()`` go: a writer appears and leaves at once (EOF)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as exc:  # ENXIO: nobody is reading it
        if exc.errno != errno.ENXIO:
            raise


@pytest.fixture
def stuck_dataset(tmp_path: Path, sample_dataset: Path):
    """The sample plus ``stuck.json``, a FIFO nobody writes to."""
    data = tmp_path / "stuck-data"
    shutil.copytree(sample_dataset, data)
    fifo = data / "stuck.json"
    os.mkfifo(fifo)
    yield data
    unblock(fifo)  # no read thread of this test process stays blocked after it


async def _timed(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.get(url)
    return response, time.monotonic() - started


async def test_waiters_honour_the_bound_and_another_pod_takes_over(redis_server, stuck_dataset, sample_dataset):
    stuck = settings_for(redis_server, stuck_dataset, dataset_load_timeout_seconds=BOUND,
                         lock_timeout_seconds=3.0, fill_wait_seconds=8.0, dataset_retry_seconds=0.2)
    healthy = settings_for(redis_server, sample_dataset, lock_timeout_seconds=3.0, fill_wait_seconds=8.0)
    lock_key = f"{stuck.cache_key_prefix}:lock:dataset"
    async with serve(stuck) as (stuck_app, a), serve(healthy) as (healthy_app, b):
        # Pod A takes the fleet lock and blocks on the FIFO; its requests share that load.
        # (Requests of A for other tags would poll the lock, and might see B's load: 200.)
        first = [asyncio.create_task(_timed(a, "/github_stats/python")) for _ in range(10)]
        await asyncio.sleep(0.3)
        assert (await a.get("/readyz")).status_code == 200  # a read within its bound is just a load
        with redis_server.client() as r:
            assert r.exists(lock_key)
        # Pod B's requests wait for A's lock...
        second = [asyncio.create_task(_timed(b, f"/github_stats/{tag}")) for tag in TEST_TAGS]

        for response, took in await asyncio.gather(*first):
            assert response.status_code == 503, response.text
            assert response.json()["error"] == "dataset_load_stuck"
            assert took <= BOUND + SLACK, took  # not FILL_WAIT_SECONDS
        # ...and load as soon as A gives up and releases it.
        for response, _ in await asyncio.gather(*second):
            assert response.status_code == 200
        assert loads(stuck_app) == 0 and loads(healthy_app) == 1
        assert stuck_app.state.metrics.value("dataset_load_failures_total", {"reason": "dataset_load_stuck"}) == 1

        # A still has a blocked read thread: not ready, and it starts no second read...
        ready = await a.get("/readyz")
        assert ready.status_code == 503 and ready.json()["error"] == "dataset_load_stuck"
        assert "blocked" in ready.json()["detail"] and str(stuck_dataset) not in ready.text
        # ...but it serves what another pod put in Redis.
        response = await a.get("/github_stats/go")
        assert response.status_code == 200 and response.headers["x-cache"] == "redis"

        # The read returns (the volume recovers): ready again.
        unblock(stuck_dataset / "stuck.json")
        deadline = time.monotonic() + 5
        while (await a.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


async def test_uvicorn_with_a_stuck_read_answers_503_reports_it_and_stops_on_sigterm(
        redis_server, stuck_dataset, uvicorn_factory):
    env = {**redis_server.env, "DATASET_DIR": str(stuck_dataset), "DATASET_LOAD_TIMEOUT_SECONDS": str(BOUND),
           "LOCK_TIMEOUT_SECONDS": "3", "FILL_WAIT_SECONDS": "8", "LOG_LEVEL": "WARNING"}
    # Two pods (own key prefixes, so they do not wait for each other's lock): A is asked about
    # its state after the bound, B gets SIGTERM while its requests wait for the stuck read.
    a, b = uvicorn_factory.many([env, {**env, "CACHE_KEY_PREFIX": "other"}])

    async with httpx.AsyncClient(timeout=20) as client:
        results = await asyncio.gather(*(_timed(client, f"{a.url}/github_stats/{tag}") for tag in TEST_TAGS * 4))
        for response, took in results:
            assert response.status_code == 503 and response.json()["error"] == "dataset_load_stuck"
            assert took <= BOUND + SLACK, took
        ready = await client.get(f"{a.url}/readyz")
        assert ready.status_code == 503 and ready.json()["error"] == "dataset_load_stuck"
        response, took = await _timed(client, f"{a.url}/github_stats/rust")  # no new read: at once
        assert response.status_code == 503 and took < 0.5, took
        with redis_server.client() as r:
            assert not r.exists("cache_api:v1:lock:dataset")  # released at the bound

        in_flight = [asyncio.create_task(_timed(client, f"{b.url}/github_stats/{tag}")) for tag in TEST_TAGS]
        await asyncio.sleep(0.3)
        for server in (a, b):
            server.proc.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        for response, took in await asyncio.gather(*in_flight):
            assert response.status_code == 503, response.text  # answered, not dropped
            assert took <= BOUND + SLACK, took
    for server in (a, b):
        # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly: the pod's 143.
        assert server.proc.wait(timeout=GRACE) == -signal.SIGTERM
        log = server.proc.stderr.read().decode()
        assert "Application shutdown complete." in log and "Finished server process" in log
    assert time.monotonic() - stopping < GRACE
