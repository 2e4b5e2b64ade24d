"""Wait until every submitted task's effect exists: the HASH ``users:<task id>``.

Used by ``--wait-results`` (``make load``, the end-to-end job): the producer knows the
ids it sent, so "nothing lost" is checked key by key, not by counting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import redis

from apps.producer.settings import ProducerSettings

RESULT_KEY = "users:{}"  # the worker's effect (docs/contract.md); the worker writes the same key


def redis_client(settings: ProducerSettings) -> redis.Redis:
    """Same endpoint and TLS rules as the broker connection: verification always on, and no
    silent backoff in redis-py (the producer's own loops wait, and log, for Redis)."""
    return redis.Redis(**settings.redis_client_kwargs(socket_connect_timeout=5))


def missing_results(client: redis.Redis, task_ids: Iterable[str], chunk: int = 500) -> list[str]:
    """The ids whose result hash does not exist yet (pipelined EXISTS, ``chunk`` at a time)."""
    ids = list(task_ids)
    missing: list[str] = []
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        with client.pipeline(transaction=False) as pipe:
            for task_id in part:
                pipe.exists(RESULT_KEY.format(task_id))
            missing += [t for t, found in zip(part, pipe.execute(), strict=True) if not found]
    return missing


def wait_for_results(client: redis.Redis, task_ids: Iterable[str], timeout: float, *,
                     poll: float = 1.0, report: Callable[[int, int], None] = lambda done, total: None,
                     clock: Callable[[], float] = time.monotonic,
                     sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Poll until no result is missing or ``timeout`` passes; return what is still missing."""
    pending = list(task_ids)
    total = len(pending)
    deadline = clock() + timeout
    while True:
        pending = missing_results(client, pending)
        report(total - len(pending), total)
        if not pending or clock() >= deadline:
            return pending
        sleep(min(poll, max(0.0, deadline - clock())))
