"""The read path against a real redis-server of every profile (``redis_any``: the in-cluster
Redis, Azure Cache for Redis 6.0, Azure Managed Redis): misses, hits by layer, 404, 422,
limit/sort, TTL expiry."""

from __future__ import annotations

import asyncio
import json

import orjson

from tests.apps.cache_api.conftest import TEST_TAGS, loads, serve, settings_for


async def test_cold_miss_loads_then_hits_local_then_redis(redis_any, sample_dataset):
    settings = settings_for(redis_any, sample_dataset, local_cache_ttl_seconds=0.3)
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


async def test_values_in_redis_are_the_encoded_bytes_with_a_jittered_ttl(redis_any, sample_dataset):
    settings = settings_for(redis_any, sample_dataset, cache_ttl_seconds=100, cache_ttl_jitter_ratio=0.5)
    async with serve(settings) as (app, client):
        response = await client.get("/github_stats/go")
        assert response.status_code == 200
    with redis_any.client() as r:
        prefix = settings.cache_key_prefix
        assert r.get(f"{prefix}:tag:go") == response.content
        ttls = [r.pttl(f"{prefix}:tag:{tag}") for tag in TEST_TAGS]
        assert all(100_000 - 2_000 <= t <= 150_000 for t in ttls), ttls
        assert len(set(ttls)) > 1, "jitter: keys must not all expire together"
        assert sorted(orjson.loads(r.get(f"{prefix}:tags"))) == sorted(TEST_TAGS)
        assert r.pttl(f"{prefix}:tags") >= max(ttls) - 1_000  # the index outlives the tags
        assert not r.exists(f"{prefix}:lock:dataset")  # released after the load


#: Not a tag name at all: answered 404 without asking Redis. ``python`` followed by a newline
#: is one of them: tags match the pattern in full.
NOT_TAG_NAMES = ["PYTHONX!", "-python", "a" * 100, "%20", "python%0A", "python%0D%0A", "python%00",
                 "%3Cscript%3E"]
#: Valid names the dataset does not have: answered 404 from the index.
UNKNOWN_TAGS = ["nope", "py.thon", "pythonx"]


async def test_unknown_tags_are_404_json_without_echo(redis_any, sample_dataset):
    async with serve(settings_for(redis_any, sample_dataset)) as (app, client):
        redis_misses = lambda: app.state.metrics.value("cache_misses_total", {"layer": "redis"})  # noqa: E731
        for tag in NOT_TAG_NAMES + UNKNOWN_TAGS:
            for _ in range(2):  # the second time from the in-process cache
                response = await client.get(f"/github_stats/{tag}")
                assert response.status_code == 404, tag
                assert response.headers["content-type"] == "application/json"
                assert response.json() == {"error": "unknown_tag", "detail": "no dataset for this tag"}
            if tag in NOT_TAG_NAMES:
                assert redis_misses() == 0, f"{tag!r} went to Redis"
        assert redis_misses() == len(UNKNOWN_TAGS)
        # Valid tags still work, and 404s did not trigger more than one load.
        assert (await client.get("/github_stats/python")).status_code == 200
        assert loads(app) == 1


async def test_tags_are_case_insensitive(redis_any, sample_dataset):
    async with serve(settings_for(redis_any, sample_dataset)) as (_, client):
        upper = await client.get("/github_stats/Python")
        lower = await client.get("/github_stats/python")
        assert upper.status_code == lower.status_code == 200
        assert upper.content == lower.content


async def test_a_new_dataset_file_is_a_tag_after_the_next_load(redis_any, tmp_path, sample_dataset):
    """Tags come from the dataset directory, not a list in the code."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "zig.json").write_bytes((sample_dataset / "go.json").read_bytes())
    async with serve(settings_for(redis_any, data)) as (_, client):
        assert (await client.get("/github_stats/zig")).status_code == 200
        assert (await client.get("/github_stats/python")).status_code == 404


async def test_sort_and_limit(redis_any, sample_dataset):
    async with serve(settings_for(redis_any, sample_dataset)) as (_, client):
        full = (await client.get("/github_stats/typescript")).json()
        for sort in ("stars", "forks", "updated_at"):
            response = await client.get("/github_stats/typescript", params={"sort": sort, "limit": 5})
            assert response.status_code == 200
            top = response.json()
            expected = sorted(full, key=lambda r: r[sort], reverse=True)[:5]
            assert [r[sort] for r in top] == [r[sort] for r in expected]
            assert len(top) == 5
            # Cached in-process: same bytes the second time, from the local layer.
            again = await client.get("/github_stats/typescript", params={"sort": sort, "limit": 5})
            assert again.content == response.content and again.headers["x-cache"] == "local"


async def test_limit_alone_keeps_dataset_order(redis_any, sample_dataset):
    async with serve(settings_for(redis_any, sample_dataset)) as (_, client):
        full = (await client.get("/github_stats/go")).json()
        three = (await client.get("/github_stats/go?limit=3")).json()
        assert three == full[:3]
        big = (await client.get("/github_stats/go?limit=1000")).json()
        assert big == full


BAD_QUERIES = {"limit=0": "0", "limit=-1": "-1", "limit=abc": "abc", "limit=1001": "1001",
               "sort=name": "name", "sort=STARS": "STARS", "sort=": None, "limit=7e9secret": "7e9secret"}


async def test_bad_query_is_422_json_without_echo(redis_any, sample_dataset):
    async with serve(settings_for(redis_any, sample_dataset)) as (app, client):
        for query, value in BAD_QUERIES.items():
            response = await client.get(f"/github_stats/python?{query}")
            assert response.status_code == 422, query
            assert response.headers["content-type"] == "application/json"
            body = response.json()
            assert body["error"] == "invalid_request"
            assert body["detail"][0]["loc"][0] == "query" and body["detail"][0]["msg"]
            assert "input" not in body["detail"][0]
            if value is not None:
                assert f'"{value}"' not in response.text, (query, response.text)
        assert loads(app) == 0  # validation happens before any cache work


async def test_ttl_expiry_reloads(redis_any, sample_dataset):
    settings = settings_for(redis_any, sample_dataset, cache_ttl_seconds=0.5, cache_ttl_jitter_ratio=0,
                            local_cache_ttl_seconds=0)
    async with serve(settings) as (app, client):
        assert (await client.get("/github_stats/python")).headers["x-cache"] == "fill"
        assert (await client.get("/github_stats/python")).headers["x-cache"] == "redis"
        assert loads(app) == 1
        await asyncio.sleep(0.7)
        with redis_any.client() as r:
            assert not r.exists(f"{settings.cache_key_prefix}:tag:python")
        again = await client.get("/github_stats/python")
        assert again.status_code == 200 and again.headers["x-cache"] == "fill"
        assert loads(app) == 2


async def test_local_cache_disabled_always_asks_redis(redis_any, sample_dataset):
    settings = settings_for(redis_any, sample_dataset, local_cache_ttl_seconds=0)
    async with serve(settings) as (app, client):
        layers = [(await client.get("/github_stats/go")).headers["x-cache"] for _ in range(4)]
        assert layers == ["fill", "redis", "redis", "redis"]


async def test_ops_endpoints(redis_any, sample_dataset):
    async with serve(settings_for(redis_any, sample_dataset)) as (_, client):
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


async def test_hot_path_answers_exactly_like_the_route(redis_any, sample_dataset):
    """The ASGI hot path (local hits) and the FastAPI route give the same bytes, headers and metrics."""
    answers = {}
    for hot in (True, False):
        async with serve(settings_for(redis_any, sample_dataset, hot_path=hot)) as (app, client):
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
