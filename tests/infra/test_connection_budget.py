"""The connection budget on the infra side (components/connections.py): every pool bound and
the in-cluster maxclients reach the rendered pods, the config refuses maxima that do not fit
the target's documented client limit (naming the keys), and the limits are Azure's figures
for every size the provider knows. The per-pod figures themselves are measured against real
processes in tests/apps/test_connection_budget.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pulumi_azure_native.redisenterprise import SkuName

from components import connections
from components.config import PROJECT, ConfigError, load_config
from tests.infra.validation.manifests import container_env

DOCS = Path(__file__).resolve().parents[2] / "docs" / "infra.md"

from tools.variants import RENDER_PLACEHOLDERS  # noqa: E402

#: An aks stack as a deployer gives it (the API server ranges are theirs to set).
AKS = {"target": "aks", **RENDER_PLACEHOLDERS}


def _container(r, kind: str, name: str, container: str) -> dict:
    (obj,) = [o for o in r.k8s_objects if o["kind"] == kind and o["metadata"]["name"] == name]
    (c,) = [c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == container]
    return c


def _env(container: dict, name: str) -> str:
    return container_env(container)[name]["value"]


@pytest.mark.parametrize("max_clients", [None, "2500"])
def test_in_cluster_redis_gets_its_maxclients(rendered, max_clients):
    r = rendered("local", **({"redisMaxClients": max_clients} if max_clients else {}))
    command = _container(r, "StatefulSet", "redis", "redis")["command"][-1]
    assert re.search(r"--maxclients (\d+)\b", command).group(1) == (max_clients or "1000")


@pytest.mark.parametrize("stack", ["local", "aks"])
def test_every_pool_bound_reaches_its_pods(rendered, stack):
    r = rendered(stack, cacheApiRedisMaxConnections="8", workerConcurrency="3")
    assert _env(_container(r, "Deployment", "cache-api", "api"), "REDIS_MAX_CONNECTIONS") == "8"
    assert _env(_container(r, "Deployment", "worker", "worker"), "WORKER_CONCURRENCY") == "3"
    defaults = rendered(stack)
    assert _env(_container(defaults, "Deployment", "cache-api", "api"), "REDIS_MAX_CONNECTIONS") == "16"
    assert _env(_container(defaults, "Deployment", "worker", "worker"), "WORKER_CONCURRENCY") == "2"


def _need(cfg) -> int:
    return sum(line.total for line in connections.budget_lines(cfg.connection_maxima))


def test_the_budget_is_tight_at_the_in_cluster_limit():
    """The largest worker fleet that fits is accepted; one pod more is refused, naming the keys."""
    base = {"redisMaxClients": "1000", "workerConcurrency": "2"}
    cfg = load_config(base)
    per_pod = connections.worker_pod(2)
    spare = 1000 - connections.headroom(1000) - _need(cfg)
    fits = cfg.worker_max_replicas + spare // per_pod
    assert _need(load_config({**base, "workerMaxReplicas": str(fits)})) + connections.headroom(1000) <= 1000
    with pytest.raises(ConfigError) as err:
        load_config({**base, "workerMaxReplicas": str(fits + 1)})
    message = str(err.value)
    assert message.startswith(f"{PROJECT}:redisMaxClients: the stack's maxima need ")
    for key in ("workerMaxReplicas", "workerConcurrency", "cacheApiMaxReplicas", "cacheApiRedisMaxConnections",
                "raise redisMaxClients"):
        assert key in message, key


@pytest.mark.parametrize(("raw", "key"), [
    ({**AKS, "azureRedis": "classic", "redisSku": "Standard", "redisCapacity": "0",
      "workerMaxReplicas": "20"}, "redisSku"),
    ({**AKS, "workerConcurrency": "32", "workerMaxReplicas": "1000"}, "redisManagedSku"),
    ({"workerMode": "job", "workerMaxReplicas": "120"}, "redisMaxClients"),
    ({"cacheApiReadPath": "replica-sidecar", "cacheApiMaxReplicas": "55"}, "redisMaxClients"),
])
def test_combinations_over_the_targets_limit_fail_naming_the_key(raw, key):
    with pytest.raises(ConfigError) as err:
        load_config(raw)
    assert str(err.value).startswith(f"{PROJECT}:{key}: the stack's maxima need "), str(err.value)


def test_every_stack_file_fits_its_redis():
    for stack in ("local", "aks"):
        from tools.render import offline_config

        cfg = load_config(offline_config(stack))
        assert _need(cfg) + connections.headroom(cfg.redis_limit.clients) <= cfg.redis_limit.clients, stack


def test_azure_sizes_without_a_documented_limit_are_refused():
    with pytest.raises(ConfigError, match=r"redisCapacity: Azure Cache for Redis Premium has no size 0"):
        load_config({**AKS, "azureRedis": "classic", "redisSku": "Premium", "redisCapacity": "0"})
    with pytest.raises(ConfigError, match=r"redisManagedSku: 'Balanced_B2' is not a size"):
        load_config({**AKS, "redisManagedSku": "Balanced_B2"})


def test_limits_are_azures_documented_figures():
    """Spot checks against the pages cited in docs/infra.md#connection-budget."""
    assert connections.azure_cache_limit("Basic", 0).clients == 256
    assert connections.azure_cache_limit("Standard", 1).clients == 1_000
    assert connections.azure_cache_limit("Standard", 6).clients == 20_000
    assert connections.azure_cache_limit("Premium", 1).clients == 7_500
    assert connections.azure_cache_limit("Premium", 4).clients == 40_000
    figures = {"Balanced_B0": 15_000, "Balanced_B5": 15_000, "Balanced_B10": 30_000, "Balanced_B50": 150_000,
               "Balanced_B150": 200_000, "MemoryOptimized_M10": 15_000, "MemoryOptimized_M100": 150_000,
               "ComputeOptimized_X3": 30_000, "ComputeOptimized_X20": 150_000, "FlashOptimized_A250": 75_000,
               "FlashOptimized_A500": 150_000, "FlashOptimized_A700": 200_000}
    assert {sku: connections.managed_max_clients(sku) for sku in figures} == figures


def test_every_managed_sku_the_provider_knows_has_a_limit_and_a_size():
    managed = [s.value for s in SkuName if re.match(r"^(Balanced|MemoryOptimized|ComputeOptimized|FlashOptimized)_", s.value)]
    assert len(managed) == 44, managed
    missing = [sku for sku in managed if connections.azure_managed_limit(sku) is None]
    assert missing == []


def test_the_docs_table_is_the_default_stacks_budget():
    """docs/infra.md#connection-budget quotes the default local stack's rows: they are these."""
    text = DOCS.read_text()
    section = text[text.index("## Connection budget"):]
    cfg = load_config({})
    for line in connections.budget_lines(cfg.connection_maxima):
        row = f"| {line.who} | {line.pods} | {line.per_pod} | {line.total} |"
        assert row in section, f"docs/infra.md has no row {row!r}"
    total = _need(cfg)
    assert f"| **total** | | | **{total}** |" in section
    assert f"{total} + {connections.headroom(1000)} headroom" in section


def _largest_fleet(raw: dict[str, str]) -> int:
    """The largest workerMaxReplicas the config accepts with ``raw`` (bisection over the key's range)."""
    lo, hi = 0, 1000
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            load_config({**raw, "workerMaxReplicas": str(mid)})
            lo = mid
        except ConfigError:
            hi = mid - 1
    return lo


@pytest.mark.parametrize(("row", "raw"), [
    ("| in-cluster, `redisMaxClients` 1000 |", {}),
    ("| Azure Cache for Redis Standard C1 (1,000) |",
     {**AKS, "azureRedis": "classic", "redisSku": "Standard", "redisCapacity": "1"}),
    ("| Azure Cache for Redis C0 (256), `cacheApiMaxReplicas` 2 |",
     {**AKS, "azureRedis": "classic", "redisSku": "Standard", "redisCapacity": "0",
      "cacheApiMaxReplicas": "2"}),
    ("| Azure Managed Redis Balanced B0 (15,000) |", {**AKS, "redisManagedSku": "Balanced_B0"}),
])
def test_the_docs_what_the_default_sizes_hold_is_what_the_config_accepts(row, raw):
    """docs/infra.md's "what the default sizes hold": each row's fleets are the largest the config accepts."""
    text = DOCS.read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith(row)]
    quoted = [int(n) for n in re.findall(r"\b\d+\b", re.sub(r"\(.*?\)", "", line.rsplit("|", 2)[1]))]
    assert quoted == [_largest_fleet({**raw, "workerConcurrency": str(c)}) for c in (1, 2, 4)], line
