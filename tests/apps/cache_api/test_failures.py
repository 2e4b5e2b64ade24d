"""Failure behaviour: a loader killed mid-load, a lock that never clears, Redis down, hung and back.

The outages (killed loader, Redis stopped and restarted, Redis hung) run on every Redis
profile: ``redis_any``, or a private ``redis_factory(profile=...)`` server the test may stop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import httpx
import pytest

from apps.cache_api.logs import LOGGER_NAME
from tests.apps.cache_api.conftest import PROFILES, loads, serve, settings_for


async def _wait_for_key(server, key: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    with server.client() as r:
        while time.monotonic() < deadline:
            pttl = r.pttl(key)
            if pttl > 0:
                return pttl
            await asyncio.sleep(0.02)
    raise AssertionError(f"{key} never appeared")


async def test_killed_loader_does_not_block_past_the_lock_timeout(redis_any, sample_dataset, uvicorn_factory):
    lock_timeout = 2.0
    # A real uvicorn process whose load takes 30 s: it takes the lock, then we SIGKILL it.
    loader = uvicorn_factory({**redis_any.env, "DATASET_DIR": str(sample_dataset),
                              "DATASET_LOAD_DELAY_SECONDS": "30", "LOCK_TIMEOUT_SECONDS": str(lock_timeout),
                              "LOG_LEVEL": "WARNING"})
    settings = settings_for(redis_any, sample_dataset, lock_timeout_seconds=lock_timeout, fill_wait_seconds=8)
    lock_key = f"{settings.cache_key_prefix}:lock:dataset"
    async with httpx.AsyncClient(timeout=60) as client:
        doomed = asyncio.create_task(client.get(f"{loader.url}/github_stats/python"))
        await _wait_for_key(redis_any, lock_key)
        loader.proc.send_signal(signal.SIGKILL)
        loader.proc.wait(timeout=5)
        try:
            await doomed
        except httpx.HTTPError:
            pass
    with redis_any.client() as r:
        remaining = r.pttl(lock_key) / 1000
    assert remaining > 0.5, "the dead loader's lock is still held"

    async with serve(settings) as (app, client):
        # What is left of the dead loader's lock when the request starts: the app's start-up
        # (a TLS handshake, on a busy machine up to a second) comes off it.
        with redis_any.client() as r:
            remaining = max(0.0, r.pttl(lock_key) / 1000)
        started = time.monotonic()
        response = await client.get("/github_stats/python")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert loads(app) == 1  # this app took over the load
    # It waited for the dead loader's lock to expire, but not much longer.
    assert remaining - 0.2 <= elapsed <= remaining + 1.5, (remaining, elapsed)


async def test_lock_held_too_long_gives_bounded_503_then_recovers(redis_server, sample_dataset):
    settings = settings_for(redis_server, sample_dataset, fill_wait_seconds=0.6)
    lock_key = f"{settings.cache_key_prefix}:lock:dataset"
    with redis_server.client() as r:
        r.set(lock_key, "a-loader-somewhere-else", px=30_000)
    async with serve(settings) as (app, client):
        started = time.monotonic()
        response = await client.get("/github_stats/python")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.json()["error"] == "dataset_loading"
        assert response.headers["retry-after"] == "1"
        assert 0.5 <= elapsed <= 2.0, elapsed
        assert loads(app) == 0
        assert app.state.metrics.value("cache_fill_timeouts_total") == 1

        with redis_server.client() as r:
            r.delete(lock_key)  # the other loader gives up
        assert (await client.get("/github_stats/python")).status_code == 200
        assert loads(app) == 1


async def test_other_replica_finishing_the_load_is_picked_up_without_a_second_load(redis_server, sample_dataset):
    """A waiter sees the value as soon as the lock holder writes it (no load of its own)."""
    slow = settings_for(redis_server, sample_dataset, dataset_load_delay_seconds=0.8)
    async with serve(slow) as (loader_app, loader), serve(slow) as (waiter_app, waiter):
        first = asyncio.create_task(loader.get("/github_stats/go"))
        await _wait_for_key(redis_server, f"{slow.cache_key_prefix}:lock:dataset")
        started = time.monotonic()
        second = await waiter.get("/github_stats/go")
        waited = time.monotonic() - started
        assert (await first).status_code == second.status_code == 200
        assert second.content == (await first).content
    assert loads(loader_app) == 1 and loads(waiter_app) == 0
    assert waited < 1.5


async def _traffic(client: httpx.AsyncClient, log: list[tuple[float, int, float]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.monotonic()
        response = await client.get("/github_stats/rust")
        log.append((started, response.status_code, time.monotonic() - started))
        if response.status_code not in (200, 503):
            raise AssertionError(f"unexpected {response.status_code}: {response.text}")
        if response.status_code == 503:
            assert response.json()["error"] == "redis_unavailable"
        await asyncio.sleep(0.01)


async def _outage_and_recovery(server, client: httpx.AsyncClient, log) -> float:
    await asyncio.sleep(0.5)
    assert log and all(status == 200 for _, status, _ in log)

    stopped_at = time.monotonic()
    server.stop()
    await asyncio.sleep(1.0)
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["status"] == "unready"
    during = [(status, took) for t, status, took in log if t > stopped_at + 0.3]
    assert during and all(status == 503 for status, _ in during), during[:5]
    assert max(took for _, took in during) < 1.0, "503 must be fast while Redis is down"

    server.start()
    restarted_at = time.monotonic()
    deadline = restarted_at + 5
    while time.monotonic() < deadline and (await client.get("/readyz")).status_code != 200:
        await asyncio.sleep(0.05)
    assert (await client.get("/readyz")).status_code == 200
    await asyncio.sleep(1.5)  # traffic after the recovery
    return restarted_at


@pytest.mark.parametrize("profile", PROFILES)
async def test_redis_stopped_and_restarted_mid_traffic(redis_factory, sample_dataset, profile):
    server = redis_factory(profile=profile)
    settings = settings_for(server, sample_dataset, local_cache_ttl_seconds=0.2)
    log: list[tuple[float, int, float]] = []
    stop = asyncio.Event()
    async with serve(settings) as (app, client):
        workers = [asyncio.create_task(_traffic(client, log, stop)) for _ in range(8)]
        try:
            restarted_at = await _outage_and_recovery(server, client, log)
        finally:
            stop.set()
            await asyncio.gather(*workers)

    after = [status for t, status, _ in log if t > restarted_at + 1.0]
    assert after and all(status == 200 for status in after), after[:10]
    assert loads(app) == 2  # Redis came back empty: one new load
    assert app.state.metrics.value("redis_errors_total") > 0
    assert app.state.metrics.value("http_requests_total",
                                   {"route": "/github_stats/{tag}", "method": "GET", "status": "500"}) == 0


@pytest.mark.parametrize("profile", PROFILES)
async def test_hung_redis_times_out_fast_and_recovers(redis_factory, sample_dataset, profile):
    server = redis_factory(profile=profile)
    settings = settings_for(server, sample_dataset, local_cache_ttl_seconds=0,
                            redis_socket_timeout_seconds=0.3, redis_connect_timeout_seconds=0.3)
    async with serve(settings) as (app, client):
        assert (await client.get("/github_stats/go")).status_code == 200
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            response = await client.get("/github_stats/go")
            took = time.monotonic() - started
            assert response.status_code == 503 and response.json()["error"] == "redis_unavailable"
            assert took < 1.5, took  # one read timeout plus one retry, not a hang
            assert (await client.get("/readyz")).status_code == 503
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        for _ in range(20):
            response = await client.get("/github_stats/go")
            if response.status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert response.status_code == 200
        assert loads(app) == 1  # the data survived in Redis; nothing reloaded


async def test_redis_errors_are_logged_at_most_once_a_second(redis_factory, sample_dataset):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    server = redis_factory()
    try:
        async with serve(settings_for(server, sample_dataset, local_cache_ttl_seconds=0)) as (app, client):
            server.stop()
            statuses = [(await client.get("/github_stats/go")).status_code for _ in range(50)]
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)
    assert statuses == [503] * 50
    warnings = [r for r in records if r.getMessage() == "redis unavailable"]
    assert 1 <= len(warnings) <= 2, len(warnings)  # 50 failures, not 50 lines
    assert app.state.metrics.value("redis_errors_total") == 50


async def test_an_unexpected_error_is_a_json_500_logged_once_a_second(redis_server, sample_dataset, monkeypatch):
    """A bug is a 500 with a JSON body; its traceback is logged once a second, not once per
    request (and not re-raised to uvicorn, which would log it a second time)."""
    from apps.cache_api.cache import TagCache

    async def broken(self, tag, sort, limit):
        raise RuntimeError("a bug")

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger(LOGGER_NAME).addHandler(handler)
    monkeypatch.setattr(TagCache, "get_view", broken)
    try:
        async with serve(settings_for(redis_server, sample_dataset, hot_path=False)) as (app, client):
            # ASGITransport raises what the app raises: a 500 *response* means nothing escaped.
            responses = [await client.get("/github_stats/go") for _ in range(30)]
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)
    assert {r.status_code for r in responses} == {500}
    assert responses[0].json() == {"error": "internal_error", "detail": "unexpected error"}
    errors = [r for r in records if r.getMessage() == "unhandled error"]
    assert 1 <= len(errors) <= 2 and errors[0].exc_info is not None
    assert app.state.metrics.value("http_requests_total",
                                   {"route": "/github_stats/{tag}", "method": "GET", "status": "500"}) == 30
