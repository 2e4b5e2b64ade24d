"""The connection budget: the Redis connections the stack's maxima can open, against the client
limit of the Redis the stack gets (docs/infra.md#connection-budget).

Every figure per pod is *measured*: real processes against a real redis-server, counted
with ``CLIENT LIST`` at their peak (tests/apps/test_connection_budget.py fails when an app opens
more, or fewer, than the figure here). KEDA's figure comes from its source (v2.20.2,
``pkg/scalers/redis_scaler.go``): one go-redis client per trigger, created when the scaler
is built; its scale loop and the metrics API server's queries can use it at the same time.

The limits are the in-cluster Redis's ``maxclients`` (set by this stack) and, on Azure, the
limits Microsoft documents per size (Azure Cache for Redis, "Default Redis server
configuration", ``maxclients``; Azure Managed Redis overview, "Maximum number of client
connections"). It does not count clients outside the stack (your own tools): the headroom is
there for those, for probes, ``kubectl exec`` bursts and reconnects overlapping old sockets.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

# -- measured per pod (tests/apps/test_connection_budget.py) ----------------------------------
#: A worker pod's main process: the consumer's pop and its commands, kombu's pidbox
#: channel with its publish client (4), plus the dead-letter client it opens at the first
#: message it cannot hand to a task (1). No mingle, gossip or event-heartbeat channels: the
#: worker runs without them (apps/worker/consumer.py; they took 4 more).
WORKER_MAIN_PROCESS = 5
#: Each prefork pool child: its result writes (one redis-py client per process).
WORKER_PER_CHILD = 1
#: job mode's ``worker-sweeper``: its broker connection for the restore sweep.
SWEEPER_POD = 2
#: A producer pod: ``--forever`` publishing, or a ``kubectl exec`` burst in a ``--standby``
#: pod (standby itself holds none): its broker connection (2) and the client that reads
#: ``INFO memory`` for its backpressure (1). With ``producerReplicas: 0`` ``make load`` runs
#: one burst pod.
PRODUCER_POD = 3
#: redis_exporter: one connection per scrape, closed after it.
EXPORTER = 1
#: The cache API's replica sidecar: its replication link to the primary (its reads stay in the pod).
CACHE_API_SIDECAR_LINK = 1
#: KEDA: one go-redis client per redis trigger; the scale loop and the metrics API can query at once.
KEDA_PER_TRIGGER = 2
#: Deployments roll with ``maxSurge: 1``: one pod more than the maximum while a rollout runs.
ROLLOUT_SURGE = 1
#: Kept free of the budget: a tenth of the limit, at least this many.
HEADROOM_SHARE, HEADROOM_MIN = 0.10, 16


def worker_pod(concurrency: int) -> int:
    return WORKER_MAIN_PROCESS + WORKER_PER_CHILD * concurrency


def headroom(limit: int) -> int:
    return max(HEADROOM_MIN, math.ceil(limit * HEADROOM_SHARE))


# -- the documented limits ---------------------------------------------------------------
#: Azure Cache for Redis ``maxclients`` per size (learn.microsoft.com, "How to configure Azure
#: Cache for Redis", Default Redis server configuration; P5: the service limit, 40,000).
AZURE_CACHE_MAX_CLIENTS: dict[tuple[str, int], int] = {
    **{(sku, c): n for sku in ("Basic", "Standard")
       for c, n in enumerate((256, 1_000, 2_000, 5_000, 10_000, 15_000, 20_000))},
    **{("Premium", c): n for c, n in zip(range(1, 6), (7_500, 15_000, 30_000, 40_000, 40_000), strict=True)},
}
#: Nominal memory per Azure Cache for Redis size, MiB (the same page): the memory alert's
#: limit where the exporter reads no maxmemory.
AZURE_CACHE_MEMORY_MI: dict[tuple[str, int], int] = {
    **{(sku, c): mi for sku in ("Basic", "Standard")
       for c, mi in enumerate((250, 1024, 2560, 6144, 13312, 26624, 54272))},
    **{("Premium", c): mi for c, mi in zip(range(1, 6), (6144, 13312, 26624, 54272, 122880), strict=True)},
}
#: Azure Managed Redis SKU number -> size (GB), in the order Azure lists both.
_MANAGED_SIZE_GB = {0: 0.5, 1: 1, 3: 3, 5: 6, 10: 12, 20: 24, 50: 60, 100: 120, 150: 180, 250: 240,
                    350: 360, 500: 480, 700: 720, 1000: 960, 1500: 1440, 2000: 1920, 4500: 4500}
#: Azure Managed Redis maximum client connections per tier and size (learn.microsoft.com,
#: "What is Azure Managed Redis?", Maximum number of client connections).
AZURE_MANAGED_MAX_CLIENTS: dict[str, dict[float, int]] = {
    "Balanced": {0.5: 15_000, 1: 15_000, 3: 15_000, 6: 15_000, 12: 30_000, 24: 75_000, 60: 150_000},
    "MemoryOptimized": {12: 15_000, 24: 30_000, 60: 75_000, 120: 150_000},
    "ComputeOptimized": {3: 30_000, 6: 30_000, 12: 75_000, 24: 150_000},
    "FlashOptimized": {240: 75_000, 480: 150_000},
}
MANAGED_CEILING = 200_000  # every larger size
#: Azure Managed Redis keeps about 20 % of a size's memory for itself (architecture, Reserved memory).
MANAGED_RESERVED_SHARE = 0.20
_MANAGED_SKU = re.compile(r"^(Balanced|MemoryOptimized|ComputeOptimized|FlashOptimized)_[BMXA]([0-9]+)$")


def managed_size_gb(sku: str) -> float | None:
    m = _MANAGED_SKU.match(sku)
    return _MANAGED_SIZE_GB.get(int(m.group(2))) if m else None


def managed_max_clients(sku: str) -> int | None:
    m = _MANAGED_SKU.match(sku)
    size = managed_size_gb(sku)
    if m is None or size is None:
        return None
    return AZURE_MANAGED_MAX_CLIENTS[m.group(1)].get(size, MANAGED_CEILING)


@dataclass(frozen=True)
class Limit:
    clients: int
    """The client limit."""
    keys: tuple[str, ...]
    """The config keys that choose it."""
    source: str
    """Where the figure comes from (for messages and docs)."""
    memory_bytes: int
    """The memory limit the alerts fall back on when the exporter reads no maxmemory."""
    remedy: str
    """How to raise it."""


def in_cluster_limit(max_clients: int, maxmemory_bytes: int) -> Limit:
    return Limit(max_clients, ("redisMaxClients",), "the in-cluster Redis's maxclients", maxmemory_bytes,
                 "raise redisMaxClients")


def azure_cache_limit(sku: str, capacity: int) -> Limit | None:
    """Azure Cache for Redis: the documented limit of the size, or None for a size Azure lacks."""
    key = (sku, capacity)
    if key not in AZURE_CACHE_MAX_CLIENTS:
        return None
    size = f"{sku} {'P' if sku == 'Premium' else 'C'}{capacity}"
    return Limit(AZURE_CACHE_MAX_CLIENTS[key], ("redisSku", "redisCapacity"), f"Azure Cache for Redis {size}",
                 AZURE_CACHE_MEMORY_MI[key] * 1024 * 1024, "pick a larger size (redisSku, redisCapacity)")


def azure_managed_limit(sku: str) -> Limit | None:
    """Azure Managed Redis: the documented limit of the SKU, or None for an unknown size."""
    clients, size = managed_max_clients(sku), managed_size_gb(sku)
    if clients is None or size is None:
        return None
    return Limit(clients, ("redisManagedSku",), f"Azure Managed Redis {sku}",
                 int(size * 1e9 * (1 - MANAGED_RESERVED_SHARE)), "pick a larger SKU (redisManagedSku)")


# -- the stack's maxima ------------------------------------------------------------------
@dataclass(frozen=True)
class Line:
    """One row of the budget: ``pods`` x ``per_pod`` connections."""

    who: str
    pods: int
    per_pod: int
    keys: tuple[str, ...]
    """The config keys that set it."""

    @property
    def total(self) -> int:
        return self.pods * self.per_pod


@dataclass(frozen=True)
class Maxima:
    """The stack settings the budget reads (``PlatformConfig.connection_maxima``)."""

    worker_mode: Literal["deployment", "job"]
    worker_max_replicas: int
    worker_concurrency: int
    cache_api_read_path: str
    cache_api_max_replicas: int
    cache_api_redis_max_connections: int
    producer_replicas: int
    monitoring: bool


def budget_lines(cfg: Maxima) -> list[Line]:
    """What the stack's maxima can hold open at once, every pod at its peak."""
    deployment = cfg.worker_mode == "deployment"
    worker_pods = cfg.worker_max_replicas + (ROLLOUT_SURGE if deployment else 0)  # Jobs do not surge
    sidecar = CACHE_API_SIDECAR_LINK if cfg.cache_api_read_path == "replica-sidecar" else 0
    lines = [
        Line("worker", worker_pods, worker_pod(cfg.worker_concurrency), ("workerMaxReplicas", "workerConcurrency")),
        Line("cache API", cfg.cache_api_max_replicas + ROLLOUT_SURGE, cfg.cache_api_redis_max_connections + sidecar,
             ("cacheApiMaxReplicas", "cacheApiRedisMaxConnections")),
        Line("producer", max(cfg.producer_replicas, 1), PRODUCER_POD, ("producerReplicas",)),
        Line("KEDA", 2 if deployment else 1, KEDA_PER_TRIGGER, ("workerMode",)),  # triggers
    ]
    if not deployment:
        lines.append(Line("worker sweeper", 1, SWEEPER_POD, ("workerMode",)))
    if cfg.monitoring:
        lines.append(Line("redis_exporter", 1, EXPORTER, ("monitoring",)))
    return lines


def budget_problem(cfg: Maxima, limit: Limit) -> tuple[str, str] | None:
    """(key, message) when the maxima plus headroom exceed ``limit``."""
    lines = budget_lines(cfg)
    need = sum(line.total for line in lines)
    spare = headroom(limit.clients)
    if need + spare <= limit.clients:
        return None
    parts = ", ".join(f"{line.who} {line.pods} x {line.per_pod} = {line.total}" for line in lines)
    knobs = sorted({k for line in lines[:2] for k in line.keys})
    return (limit.keys[0], f"the stack's maxima need {need} Redis connections ({parts}) plus {spare} headroom, "
            f"more than the {limit.clients} that {limit.source} accepts: lower {', '.join(knobs)}, "
            f"or {limit.remedy} (docs/infra.md#connection-budget)")
