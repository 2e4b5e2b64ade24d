"""Nothing read from Redis is trusted, on every Redis profile (``redis_any``): junk bytes, a
valid JSON value of the wrong shape, a junk index or a key of another type is a miss that a
reload repairs; it is never served, never a 500, never a 503; it is logged once per second
without a traceback."""

from __future__ import annotations

import orjson
import pytest

from tests.apps.cache_api.conftest import loads, serve, settings_for

JUNK = [
    b"\x00\xff not json",
    b"[{\"name\": ",  # truncated
    b"\"[]\"",  # a JSON string
    b"{\"name\": \"not a list\"}",
    b"[{\"name\": \"x\"}]",  # a list, but not of records
    b"[1, 2, 3]",
]
VIEWS = ["", "?limit=3", "?sort=stars", "?sort=updated_at&limit=2"]




def _expected(sample_dataset, tag: str) -> list:
    return orjson.loads((sample_dataset / f"{tag}.json").read_bytes())


async def test_junk_in_a_tag_key_is_repaired_not_served(redis_any, sample_dataset):
    settings = settings_for(redis_any, sample_dataset, local_cache_ttl_seconds=0)
    key = f"{settings.cache_key_prefix}:tag:python"
    expected = _expected(sample_dataset, "python")
    async with serve(settings) as (app, client):
        assert (await client.get("/github_stats/python")).status_code == 200
        with redis_any.client() as r:
            good = r.get(key)
            for junk in JUNK:
                for view in VIEWS:
                    r.set(key, junk, px=60_000)
                    response = await client.get(f"/github_stats/python{view}")
                    assert response.status_code == 200, (junk, view, response.text)
                    assert response.headers["x-cache"] == "fill"  # the junk was a miss: reloaded
                    body = response.json()
                    assert isinstance(body, list) and all(record in expected for record in body)
                    assert r.get(key) == good, "the reload rewrote the key"
        assert loads(app) == 1 + len(JUNK) * len(VIEWS)
        assert app.state.metrics.value("cache_corrupt_values_total") >= len(JUNK) * len(VIEWS)


@pytest.mark.parametrize("index", [b"junk", b"{\"python\": 1}", b"[1, 2]", b"\xff"])
async def test_a_junk_index_is_ignored_and_rewritten(redis_any, sample_dataset, index):
    settings = settings_for(redis_any, sample_dataset)
    index_key = f"{settings.cache_key_prefix}:tags"
    with redis_any.client() as r:
        r.set(index_key, index, px=60_000)
    async with serve(settings) as (app, client):
        response = await client.get("/github_stats/go")
        assert response.status_code == 200 and response.json() == _expected(sample_dataset, "go")
        assert (await client.get("/github_stats/nope")).status_code == 404  # from the new index
        assert loads(app) == 1
    with redis_any.client() as r:
        assert "go" in orjson.loads(r.get(index_key))


async def test_keys_of_another_type_are_misses_not_redis_errors(redis_any, sample_dataset):
    settings = settings_for(redis_any, sample_dataset, local_cache_ttl_seconds=0)
    prefix = settings.cache_key_prefix
    with redis_any.client() as r:
        r.hset(f"{prefix}:tag:rust", "field", "value")
        r.rpush(f"{prefix}:tags", "rust")
    async with serve(settings) as (app, client):
        response = await client.get("/github_stats/rust")
        assert response.status_code == 200 and response.json() == _expected(sample_dataset, "rust")
        assert (await client.get("/readyz")).status_code == 200
        assert app.state.metrics.value("redis_errors_total") == 0
        assert loads(app) == 1
    with redis_any.client() as r:
        assert r.type(f"{prefix}:tag:rust") == b"string" and r.type(f"{prefix}:tags") == b"string"


async def test_a_corrupt_value_that_stays_is_logged_once_a_second(redis_any, sample_dataset, log_lines):
    """Junk under a tag the dataset does not have is never rewritten: each read meets it again."""
    settings = settings_for(redis_any, sample_dataset, local_cache_ttl_seconds=0)
    async with serve(settings) as (app, client):
        assert (await client.get("/github_stats/go")).status_code == 200
        with redis_any.client() as r:
            r.set(f"{settings.cache_key_prefix}:tag:nope", b"\x00junk" * 1000)
        statuses = {(await client.get(f"/github_stats/nope{view}")).status_code for view in VIEWS * 15}
        assert statuses == {404}
        assert app.state.metrics.value("cache_corrupt_values_total") >= 60
    corrupt = [line for line in log_lines if "corrupt cache value" in line]
    assert 1 <= len(corrupt) <= 2, corrupt  # 60 requests, not 60 lines
    assert all('"exc"' not in line and "junk" not in line for line in corrupt)  # no traceback, no value
    assert sum(len(line) for line in log_lines) < 4_000
