"""The formulas and limits the config model checks and the components apply: pure
arithmetic, no Pulumi import, so the config is checked before any SDK is loaded.
"""

from __future__ import annotations

import math

MI = 1024 * 1024
#: MiB of a Redis container's limit kept outside the dataset: the process itself, client
#: input/output buffers, the 1 MiB replication backlog, Lua and module overhead.
REDIS_RESERVED_MI = 32


def redis_maxmemory_bytes(memory_limit_mi: int) -> int:
    """maxmemory of a Redis primary whose container may use ``memory_limit_mi`` MiB.

    ``(limit - 32 MiB) / 2``: an AOF rewrite (and any BGSAVE) forks, and while the child
    writes, every page the parent changes is copied (copy-on-write). With a busy queue that
    can approach the whole dataset, so the dataset gets at most half of what is left after
    the fixed reserve. With ``noeviction`` a full Redis then refuses writes (the producer
    and worker see an OOM error) instead of the kernel killing the pod.
    """
    if memory_limit_mi <= 2 * REDIS_RESERVED_MI:
        raise ValueError(f"a Redis memory limit of {memory_limit_mi} MiB leaves no room for data")
    return (memory_limit_mi - REDIS_RESERVED_MI) // 2 * MI


def replica_memory_limit_mi(primary_maxmemory_bytes: int) -> int:
    """Memory limit (MiB) of a replica that must hold the primary's whole dataset.

    A replica never forks here (no RDB, no AOF), but it holds everything the primary holds,
    up to the primary's maxmemory, plus allocator fragmentation (a quarter on top) and the
    same fixed reserve as the primary.
    """
    dataset_mi = -(-primary_maxmemory_bytes // MI)  # ceil
    return dataset_mi + -(-dataset_mi // 4) + REDIS_RESERVED_MI


#: The worker's hard task time limit is ceil(WORK_SECONDS_MAX) + this (apps/worker/settings.py
#: HARD_LIMIT_MARGIN; infra and apps share no code: tests/test_contract.py keeps them equal).
WORKER_HARD_LIMIT_MARGIN = 5


def hard_time_limit(work_seconds_max: float) -> int:
    """The worker's hard task time limit: ceil(WORK_SECONDS_MAX) + WORKER_HARD_LIMIT_MARGIN."""
    return int(math.ceil(work_seconds_max)) + WORKER_HARD_LIMIT_MARGIN
#: The worker truncates each dead-letter entry's payload/reason to this many bytes
#: (apps/worker/settings.py DEAD_LETTER_MAX_ENTRY_BYTES default; tests/test_contract.py
#: keeps them equal). Infra sizes Redis with it; it does not set the variable.
DEAD_LETTER_MAX_ENTRY_BYTES = 16384
