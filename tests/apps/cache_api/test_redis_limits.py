"""The cache API at Redis's other limits, on every Redis profile: ``LOADING`` after a
restart and the client limit (``max number of clients reached``). Redis refuses reads
then, so requests that need it answer 503 ``redis_unavailable`` with the reason, ``/readyz``
says the same, nothing dies, and service comes back by itself."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time

import pytest

from tests.apps.cache_api.conftest import PROFILES, TEST_TAGS, loads, serve, settings_for
from tests.apps.redis_fill import close_all, fill_clients
from tests.apps.redis_server import RedisServer

#: Keys in the RDB the restarted server loads, and the delay per key: about 3 s of LOADING.
RDB_KEYS, KEY_LOAD_DELAY_US = 3000, 1000


def _write_rdb(workdir) -> None:
    """A dump.rdb of RDB_KEYS keys in ``workdir``, written by a plain server (the Azure
    profiles refuse SAVE): the next server started there loads it."""
    writer = RedisServer(workdir=workdir / "rdb-writer", audit=None).start()
    try:
        with writer.client() as c:
            c.eval("for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'restored:' .. i, 'v') end", 0, RDB_KEYS)
            c.save()
    finally:
        writer.cleanup()
    shutil.copy(workdir / "rdb-writer" / "dump.rdb", workdir / "dump.rdb")


@pytest.mark.parametrize("profile", PROFILES)
async def test_loading_after_a_restart_is_a_clear_503_then_service_resumes(redis_factory, sample_dataset,
                                                                         tmp_path, profile):
    server = redis_factory(profile=profile)
    settings = settings_for(server, sample_dataset, local_cache_ttl_seconds=0)
    async with serve(settings) as (app, client):
        assert (await client.get("/github_stats/python")).status_code == 200
        server.stop()
        _write_rdb(server.workdir)
        server.settings.update({"key-load-delay": str(KEY_LOAD_DELAY_US),
                                "loading-process-events-interval-bytes": "1024"})
        restarted = threading.Thread(target=server.start, kwargs={"timeout": 30})
        restarted.start()  # returns once the server answers PING, i.e. when LOADING is over
        try:
            loading = None
            deadline = time.monotonic() + 10
            while loading is None and time.monotonic() < deadline:
                response = await client.get("/github_stats/go")
                if response.status_code == 503 and "loading" in response.json().get("reason", ""):
                    loading = response
                await asyncio.sleep(0.05)
            assert loading is not None, "never saw LOADING"
            assert loading.json()["error"] == "redis_unavailable"
            assert loading.headers["retry-after"] == "1"
            ready = await client.get("/readyz")
            if ready.status_code == 503:  # still loading: the probe says why
                assert ready.json()["error"] == "redis_unavailable"
                assert "loading its dataset" in ready.json()["detail"]
        finally:
            await asyncio.to_thread(restarted.join, 30)
        with server.client() as c:
            assert c.dbsize() >= RDB_KEYS  # it did load the RDB
        assert (await client.get("/readyz")).status_code == 200
        response = await client.get("/github_stats/go")
        assert response.status_code == 200
        assert loads(app) == 2  # the restarted Redis had none of our keys: one new load
        assert app.state.metrics.value("http_requests_total",
                                       {"route": "/github_stats/{tag}", "method": "GET", "status": "500"}) == 0


@pytest.mark.parametrize("profile", PROFILES)
async def test_client_limit_is_a_clear_503_and_pooled_connections_keep_serving(redis_factory, sample_dataset,
                                                                              profile):
    server = redis_factory(profile=profile, settings={"maxclients": "16"})
    settings = settings_for(server, sample_dataset, local_cache_ttl_seconds=0, redis_max_connections=2)
    async with serve(settings) as (warm_app, warm):
        for tag in TEST_TAGS:  # opens this pod's pooled connection(s) before the limit is reached
            assert (await warm.get(f"/github_stats/{tag}")).status_code == 200
        fillers = fill_clients(server)
        try:
            async with serve(settings) as (cold_app, cold):  # a pod started at the limit
                response = await cold.get("/github_stats/python")
                assert response.status_code == 503
                assert response.json()["error"] == "redis_unavailable"
                # Plain TCP: Redis sends its error. TLS (both Azure services): it closes the
                # connection before the handshake, so the client sees a reset.
                said = "connection reset" if server.tls else "max number of clients reached"
                assert said in response.json()["reason"]
                ready = await cold.get("/readyz")
                assert ready.status_code == 503 and said in ready.json()["detail"]
                # The pod that already had its connection keeps serving.
                for tag in TEST_TAGS:
                    assert (await warm.get(f"/github_stats/{tag}")).status_code == 200
                assert (await warm.get("/readyz")).status_code == 200

                close_all(fillers)
                fillers = []
                response = await cold.get("/github_stats/python")
                assert response.status_code == 200  # a slot is free: the new pod connects
                assert (await cold.get("/readyz")).status_code == 200
                assert loads(cold_app) == 0  # the data was in Redis already
        finally:
            close_all(fillers)
