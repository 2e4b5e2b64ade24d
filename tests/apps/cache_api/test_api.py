"""The read path against a real redis-server: misses, hits by layer, 404, limit/sort, TTL expiry."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest

from tests.apps.cache_api.conftest import TEST_TAGS, loads, serve, settings_for


async def test_cold_miss_loads_then_hits_local_then_redis(redis_server, sample_dataset):
    settings = settings_for(redis_server, sample_dataset, local_cache_ttl_seconds=0.3)
    async with serve(settings) as (app, client):
        first = await client.get("/github_stats/python")
        assert first.status_code == 200
        assert first.headers["content-type"] == "application/json"
        assert first.headers["x-cache"] == "fill"
        body = first.json()
        assert isinstance(body, list) and len(body) == 20  # real JSON list, not a JSON string
        assert set(body[0]) == {"name", "owner", "url", "description", "stars", "forks", "language",
                                "topics", "updated_at"}
        # The served bytes are the file's records, as stored.
        assert body == json.loads((sample_dataset / "python.json").read_text())
        assert loads(app) == 1

        second = await client.get("/github_stats/python")
        assert second.headers["x-cache"] == "local" and second.content == first.content

        await asyncio.sleep(0.35)  # past the in-process staleness bound
        third = await client.get("/github_stats/python")
        assert third.headers["x-cache"] == "redis" and third.content == first.content

        # The whole dataset came in with the first load: another tag is a Redis hit, no new load.
        other = await client.get("/github_stats/rust")
        assert other.status_code == 200 and other.headers["x-cache"] == "redis"
        assert loads(app) == 1

    m = app.state.metrics
    assert m.value("cache_hits_total", {"layer": "local"}) == 1
    assert m.value("cache_hits_total", {"layer": "redis"}) == 2
    assert m.value("cache_misses_total", {"layer": "redis"}) == 1


async def test_values_in_redis_are_the_encoded_bytes_with_a_jittered_ttl(redis_server, sample_dataset):
    settings = settings_for(redis_server, sample_dataset, cache_ttl_seconds=100, cache_ttl_jitter_ratio=0.5)
    async with serve(settings) as (app, client):
        response = await client.get("/github_stats/go")
        assert response.status_code == 200
    with redis_server.client() as r:
        prefix = settings.cache_key_prefix
        assert r.get(f"{prefix}:tag:go") == response.content
        ttls = [r.pttl(f"{prefix}:tag:{tag}") for tag in TEST_TAGS]
        assert all(100_000 - 2_000 <= t <= 150_000 for t in ttls), ttls
        assert len(set(ttls)) > 1, "jitter: keys must not all expire together"
        assert sorted(orjson.loads(r.get(f"{prefix}:tags"))) == sorted(TEST_TAGS)
        assert r.pttl(f"{prefix}:tags") >= max(ttls) - 1_000  # the index outlives the tags
        assert not r.exists(f"{prefix}:lock:dataset")  # released after the load


@pytest.mark.parametrize("tag", ["nope", "PYTHONX", "-python", "a" * 100, "%20", "py.thon"])
async def test_unknown_tag_is_404_json(redis_server, sample_dataset, tag):
    async with serve(settings_for(redis_server, sample_dataset)) as (app, client):
        response = await client.get(f"/github_stats/{tag}")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == "unknown_tag"
        # Valid tags still work, and 404s did not trigger more than one load.
        assert (await client.get("/github_stats/python")).status_code == 200
        assert (await client.get(f"/github_stats/{tag}")).status_code == 404
        assert loads(app) <= 1


async def test_tags_are_case_insensitive(redis_server, sample_dataset):
    async with serve(settings_for(redis_server, sample_dataset)) as (_, client):
        upper = await client.get("/github_stats/Python")
        lower = await client.get("/github_stats/python")
        assert upper.status_code == lower.status_code == 200
        assert upper.content == lower.content


async def test_a_new_dataset_file_is_a_tag_after_the_next_load(redis_server, tmp_path, sample_dataset):
    """Tags come from the dataset directory, not a list in the code."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "zig.json").write_bytes((sample_dataset / "go.json").read_bytes())
    async with serve(settings_for(redis_server, data)) as (_, client):
        assert (await client.get("/github_stats/zig")).status_code == 200
        assert (await client.get("/github_stats/python")).status_code == 404


@pytest.mark.parametrize("sort", ["stars", "forks", "updated_at"])
async def test_sort_and_limit(redis_server, sample_dataset, sort):
    async with serve(settings_for(redis_server, sample_dataset)) as (_, client):
        full = (await client.get("/github_stats/typescript")).json()
        response = await client.get("/github_stats/typescript", params={"sort": sort, "limit": 5})
        assert response.status_code == 200
        top = response.json()
        expected = sorted(full, key=lambda r: r[sort], reverse=True)[:5]
        assert [r[sort] for r in top] == [r[sort] for r in expected]
        assert len(top) == 5
        # Cached in-process: same bytes the second time, from the local layer.
        again = await client.get("/github_stats/typescript", params={"sort": sort, "limit": 5})
        assert again.content == response.content and again.headers["x-cache"] == "local"


async def test_limit_alone_keeps_dataset_order(redis_server, sample_dataset):
    async with serve(settings_for(redis_server, sample_dataset)) as (_, client):
        full = (await client.get("/github_stats/go")).json()
        three = (await client.get("/github_stats/go?limit=3")).json()
        assert three == full[:3]
        big = (await client.get("/github_stats/go?limit=1000")).json()
        assert big == full


@pytest.mark.parametrize("query", ["limit=0", "limit=-1", "limit=abc", "limit=1001", "sort=name",
                                   "sort=STARS", "sort="])
async def test_bad_query_is_422_json(redis_server, sample_dataset, query):
    async with serve(settings_for(redis_server, sample_dataset)) as (app, client):
        response = await client.get(f"/github_stats/python?{query}")
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/json"
        assert "detail" in response.json()
        assert loads(app) == 0  # validation happens before any cache work


async def test_ttl_expiry_reloads(redis_server, sample_dataset):
    settings = settings_for(redis_server, sample_dataset, cache_ttl_seconds=0.5, cache_ttl_jitter_ratio=0,
                            local_cache_ttl_seconds=0)
    async with serve(settings) as (app, client):
        assert (await client.get("/github_stats/python")).headers["x-cache"] == "fill"
        assert (await client.get("/github_stats/python")).headers["x-cache"] == "redis"
        assert loads(app) == 1
        await asyncio.sleep(0.7)
        with redis_server.client() as r:
            assert not r.exists(f"{settings.cache_key_prefix}:tag:python")
        again = await client.get("/github_stats/python")
        assert again.status_code == 200 and again.headers["x-cache"] == "fill"
        assert loads(app) == 2


async def test_local_cache_disabled_always_asks_redis(redis_server, sample_dataset):
    settings = settings_for(redis_server, sample_dataset, local_cache_ttl_seconds=0)
    async with serve(settings) as (app, client):
        layers = [(await client.get("/github_stats/go")).headers["x-cache"] for _ in range(4)]
        assert layers == ["fill", "redis", "redis", "redis"]


async def test_ops_endpoints(redis_server, sample_dataset):
    async with serve(settings_for(redis_server, sample_dataset)) as (_, client):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        await client.get("/github_stats/python")
        await client.get("/github_stats/python")
        await client.get("/github_stats/unknown")
        text = (await client.get("/metrics")).text
        assert "dataset_loads_total 1.0" in text
        assert 'http_requests_total{method="GET",route="/github_stats/{tag}",status="200"} 2.0' in text
        assert 'http_requests_total{method="GET",route="/github_stats/{tag}",status="404"} 1.0' in text
        assert 'cache_hits_total{layer="local"} 1.0' in text
        assert 'cache_misses_total{layer="redis"}' in text
        assert 'http_request_duration_seconds_bucket{le="0.005",route="/github_stats/{tag}"}' in text
        # Unknown paths do not create one label per path.
        await client.get("/no/such/path")
        assert 'route="unmatched"' in (await client.get("/metrics")).text


async def test_hot_path_answers_exactly_like_the_route(redis_server, sample_dataset):
    """The ASGI hot path (local hits) and the FastAPI route give the same bytes, headers and metrics."""
    answers = {}
    for hot in (True, False):
        async with serve(settings_for(redis_server, sample_dataset, hot_path=hot)) as (app, client):
            await client.get("/github_stats/python")  # fill
            answer = await client.get("/github_stats/Python")  # a local hit
            assert (await client.get("/github_stats/nope")).status_code == 404  # 404s pass through
            assert (await client.get("/github_stats/nope")).status_code == 404  # also when cached
            m = app.state.metrics
            counted = m.value("http_requests_total", {"route": "/github_stats/{tag}", "method": "GET",
                                                      "status": "200"})
            observed = m.value("http_request_duration_seconds_count", {"route": "/github_stats/{tag}"})
            answers[hot] = (answer.status_code, answer.content, answer.headers["content-type"],
                            answer.headers["content-length"], answer.headers["x-cache"], counted, observed,
                            m.value("cache_hits_total", {"layer": "local"}))
    assert answers[True] == answers[False]
    assert answers[True][4] == "local" and answers[True][5] == 2 and answers[True][6] == 4
