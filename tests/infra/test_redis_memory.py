"""Bounded by design: the in-cluster Redis' maxmemory comes from its memory limit (one
value), the replica sidecar's limit from the primary's maxmemory, and the worker's result
TTL and dead-letter bound reach it. Checked from both sides on the rendered manifests."""

from __future__ import annotations

import re

import pytest

from components.config import DEAD_LETTER_MAX_SHARE, PROJECT, ConfigError, load_config
from components.limits import (
    DEAD_LETTER_MAX_ENTRY_BYTES,
    REDIS_RESERVED_MI,
    redis_maxmemory_bytes,
    replica_memory_limit_mi,
)
from tools.variants import RENDER_PLACEHOLDERS

MI = 1024 * 1024


def _quantity_bytes(q: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", q).groups()
    return int(number) * (MI if unit == "Mi" else 1024 * MI)


def _maxmemory(container: dict) -> int:
    return int(re.search(r"--maxmemory (\d+)", container["command"][-1]).group(1))


def _container(r, kind: str, name: str, container: str) -> dict:
    (obj,) = [o for o in r.k8s_objects if o["kind"] == kind and o["metadata"]["name"] == name]
    (c,) = [c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == container]
    return c


@pytest.mark.parametrize("limit_mi", [None, "1024", "384"])
def test_primary_maxmemory_is_the_formula_of_its_rendered_limit(rendered, limit_mi):
    r = rendered("local", **({"redisMemoryLimitMi": limit_mi} if limit_mi else {}))
    redis = _container(r, "StatefulSet", "redis", "redis")
    limit = _quantity_bytes(redis["resources"]["limits"]["memory"])
    assert limit == int(limit_mi or 512) * MI
    assert redis["resources"]["requests"]["memory"] == redis["resources"]["limits"]["memory"]
    # the formula, written out: (limit - reserve) / 2, whole MiB
    assert _maxmemory(redis) == (limit // MI - REDIS_RESERVED_MI) // 2 * MI
    assert _maxmemory(redis) == redis_maxmemory_bytes(limit // MI)
    assert "--maxmemory-policy noeviction" in redis["command"][-1]
    # headroom: the dataset plus a full copy-on-write copy plus the reserve fit the limit
    assert 2 * _maxmemory(redis) + REDIS_RESERVED_MI * MI <= limit


@pytest.mark.parametrize("limit_mi", [None, "2048"])
def test_replica_sidecar_fits_the_primarys_dataset(rendered, limit_mi):
    r = rendered("local", cacheApiReadPath="replica-sidecar", **({"redisMemoryLimitMi": limit_mi} if limit_mi else {}))
    primary = _maxmemory(_container(r, "StatefulSet", "redis", "redis"))
    replica = _container(r, "Deployment", "cache-api", "redis-replica")
    assert _maxmemory(replica) == primary
    assert "--maxmemory-policy noeviction" in replica["command"][-1]
    limit = _quantity_bytes(replica["resources"]["limits"]["memory"])
    assert limit == replica_memory_limit_mi(primary) * MI
    assert limit >= primary + REDIS_RESERVED_MI * MI  # the whole dataset, plus the reserve
    (api,) = [o for o in r.k8s_objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "cache-api"]
    (tmp,) = [v for v in api["spec"]["template"]["spec"]["volumes"] if v["name"] == "replica-tmp"]
    assert _quantity_bytes(tmp["emptyDir"]["sizeLimit"]) >= primary  # room for a full-sync RDB


def test_worst_case_dead_letters_are_a_small_fraction_of_maxmemory(rendered):
    r = rendered("local")
    env = {e["name"]: e.get("value") for e in _container(r, "Deployment", "worker", "worker")["env"]}
    worst = int(env["DEAD_LETTER_MAX_LENGTH"]) * DEAD_LETTER_MAX_ENTRY_BYTES
    maxmemory = _maxmemory(_container(r, "StatefulSet", "redis", "redis"))
    assert worst <= DEAD_LETTER_MAX_SHARE * maxmemory, (worst, maxmemory)


@pytest.mark.parametrize("mode", ["deployment", "job"])
def test_result_ttl_and_dead_letter_bound_reach_the_worker(rendered, mode):
    r = rendered("local", workerMode=mode, resultTtlSeconds="3600", deadLetterMaxLength="250")
    (owner,) = [o for o in r.k8s_objects if o["kind"] in ("Deployment", "ScaledJob") and o["metadata"]["name"] == "worker"]
    spec = owner["spec"]["jobTargetRef"]["template"]["spec"] if mode == "job" else owner["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert (env["RESULT_TTL_SECONDS"], env["DEAD_LETTER_MAX_LENGTH"]) == ("3600", "250")
    assert "DEAD_LETTER_MAX_ENTRY_BYTES" not in env  # the worker's own bound
    defaults = rendered("local", workerMode=mode)
    (owner,) = [o for o in defaults.k8s_objects if o["kind"] in ("Deployment", "ScaledJob") and o["metadata"]["name"] == "worker"]
    spec = owner["spec"]["jobTargetRef"]["template"]["spec"] if mode == "job" else owner["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert (env["RESULT_TTL_SECONDS"], env["DEAD_LETTER_MAX_LENGTH"]) == ("86400", "1000")


@pytest.mark.parametrize("overrides, key, fragment", [
    ({"resultTtlSeconds": "0"}, "resultTtlSeconds", "greater than 0"),
    ({"deadLetterMaxLength": "0"}, "deadLetterMaxLength", "greater than 0"),
    ({"deadLetterMaxLength": "-3"}, "deadLetterMaxLength", "greater than 0"),
    ({"redisMemoryLimitMi": "64"}, "redisMemoryLimitMi", "greater than or equal to 128"),
    # 2,000 x 16 KiB = 31 MiB > 10 % of the 240 MiB maxmemory of a 512 MiB Redis
    ({"deadLetterMaxLength": "2000"}, "deadLetterMaxLength", "raise redisMemoryLimitMi"),
])
def test_bounds_are_validated(overrides, key, fragment):
    with pytest.raises(ConfigError) as err:
        load_config({f"{PROJECT}:{k}": v for k, v in overrides.items()})
    assert f"{PROJECT}:{key}:" in str(err.value) and fragment in str(err.value)


def test_dead_letter_bound_scales_with_the_memory_limit_and_ignores_azure():
    assert load_config({"deadLetterMaxLength": "2000", "redisMemoryLimitMi": "1024"}).dead_letter_max_length == 2000
    # on aks the SKU sizes Redis; the in-cluster formula does not apply
    assert load_config({"target": "aks", **RENDER_PLACEHOLDERS, "deadLetterMaxLength": "100000"}).dead_letter_max_length == 100000


def test_formula_rejects_a_limit_without_room():
    with pytest.raises(ValueError, match="no room"):
        redis_maxmemory_bytes(2 * REDIS_RESERVED_MI)


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize("limit_mi", [None, "1024"])
def test_producer_gets_the_in_cluster_maxmemory_and_its_threshold(rendered, limit_mi):
    """The producer's backpressure counts against the maxmemory this stack sets (docs/worker.md,
    "Backpressure"): the same number as the server's --maxmemory, and the configured percent."""
    r = rendered("local", **({"redisMemoryLimitMi": limit_mi} if limit_mi else {}))
    env = _env(_container(r, "Deployment", "producer", "producer"))
    assert int(env["REDIS_MAXMEMORY_BYTES"]) == _maxmemory(_container(r, "StatefulSet", "redis", "redis"))
    assert env["PUBLISH_MAX_MEMORY_PERCENT"] == "80"
    assert _env(_container(rendered("local", producerPublishMaxMemoryPercent="70"), "Deployment", "producer",
                           "producer"))["PUBLISH_MAX_MEMORY_PERCENT"] == "70"


@pytest.mark.parametrize("overrides, expected", [
    # Azure Managed Redis reports no maxmemory itself: the size less its ~20 % reserve.
    ({}, 400_000_000),  # Balanced_B0, 0.5 GB
    ({"redisManagedSku": "MemoryOptimized_M10"}, 9_600_000_000),  # 12 GB
    ({"azureRedis": "classic"}, 1024 * MI),  # Azure Cache for Redis Standard C1, 1 GB
    ({"azureRedis": "classic", "redisSku": "Premium", "redisCapacity": "2"}, 13312 * MI),  # P2, 13 GB
])
def test_producer_gets_the_azure_sizes_memory_the_alert_uses_too(rendered, overrides, expected):
    r = rendered("aks", **overrides)
    env = _env(_container(r, "Deployment", "producer", "producer"))
    assert int(env["REDIS_MAXMEMORY_BYTES"]) == expected
    cfg = load_config({"target": "aks", **RENDER_PLACEHOLDERS, **overrides})
    assert cfg.redis_limit.memory_bytes == expected  # one limit: the memory alert's (components/connections.py)


@pytest.mark.parametrize("percent", ["5", "99"])
def test_publish_threshold_out_of_range_is_refused_naming_the_key(percent):
    with pytest.raises(ConfigError, match="producerPublishMaxMemoryPercent"):
        load_config({f"{PROJECT}:producerPublishMaxMemoryPercent": percent})


@pytest.mark.parametrize("mode, kind, name, container", [
    ("deployment", "Deployment", "worker", "worker"), ("deployment", "Deployment", "producer", "producer"),
    ("job", "Deployment", "worker-sweeper", "sweeper"),
])
def test_readiness_probes_say_not_ready_while_waiting_for_redis(rendered, mode, kind, name, container):
    """Live while waiting for Redis (a restart cannot help), not ready (docs/worker.md)."""
    c = _container(rendered("local", workerMode=mode), kind, name, container)
    live, ready = c["livenessProbe"]["exec"]["command"], c["readinessProbe"]["exec"]["command"]
    assert "--ready" not in live and ready == [*live, "--ready"]
