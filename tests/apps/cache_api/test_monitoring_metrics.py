"""The cache API metrics the dashboard and alerts read: hits by layer including
``fill``, and ``dataset_load_failures_total``."""

from __future__ import annotations

from tests.apps.cache_api.conftest import serve, settings_for


async def test_hits_by_layer_add_up_to_every_lookup(redis_server, sample_dataset):
    settings = settings_for(redis_server, sample_dataset, local_cache_ttl_seconds=60)
    async with serve(settings) as (app, client):
        layers = [(await client.get(f"/github_stats/{tag}")).headers.get("x-cache")
                  for tag in ("python", "python", "go", "nosuchtag")]
    assert layers[:3] == ["fill", "local", "redis"]
    m = app.state.metrics
    hits = {layer: m.value("cache_hits_total", {"layer": layer}) for layer in ("local", "redis", "fill")}
    assert hits == {"local": 1, "redis": 1, "fill": 1}
    lookups = hits["local"] + m.value("cache_misses_total", {"layer": "local"})
    assert lookups == 4  # the unknown tag is a lookup that no layer answered
    assert m.value("dataset_load_failures_total", {"reason": "dataset_unavailable"}) == 0


async def test_an_unreadable_dataset_counts_a_load_failure(redis_server, tmp_path):
    settings = settings_for(redis_server, tmp_path / "missing-dataset")
    async with serve(settings) as (app, client):
        response = await client.get("/github_stats/python")
    assert response.status_code >= 500
    m = app.state.metrics
    assert m.value("dataset_load_failures_total", {"reason": "dataset_unavailable"}) == 1
    assert m.value("dataset_loads_total") == 0
    assert m.value("cache_hits_total", {"layer": "fill"}) == 0
