"""Backpressure: the producer publishes only while Redis has room for the workers.

Why: at ``maxmemory`` with ``noeviction`` Redis refuses every command that may grow
memory, and the worker's pop (``BRPOPLPUSH``), its unacked record and its result write are
such commands. A queue that takes the last of the memory therefore stops the workers that
would drain it: nothing is processed until someone deletes keys by hand. So the queue must
never take it: the producer keeps ``100 - PUBLISH_MAX_MEMORY_PERCENT`` % of ``maxmemory``
(20 % by default) free for what the workers write while they drain, and for what else
shares the Redis (docs/worker.md, "Backpressure").

How: before each publish, :meth:`Admission.room` compares Redis's used memory with
``PUBLISH_MAX_MEMORY_PERCENT`` % of the limit. Used memory is ``INFO memory``'s
``used_memory`` minus ``mem_not_counted_for_evict`` (replication and AOF buffers, which Redis
itself leaves out of its ``maxmemory`` check). The limit is the smaller of what the server
reports (``maxmemory``; Azure Managed Redis reports none) and ``REDIS_MAXMEMORY_BYTES``
(infra sets it from the size it gave Redis). ``INFO`` is read at most every
``refresh_seconds``, and at once when the publishes since the last reading, counted at
``task_bytes`` each, could have crossed the threshold: a producer overshoots the threshold
by at most one task.

``INFO memory`` is a single-section ``INFO`` (Redis 6.0 has it; Azure does not block it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

#: Bytes one published task may add to Redis, counted between two INFO readings. The
#: producer's tasks take about 0.6 kB each in the queue (docs/capacity.md);
#: tests/apps/producer/test_admission.py checks that this bound holds.
TASK_BYTES = 2048


@dataclass(frozen=True)
class Reading:
    """One look at Redis's memory: what counts against the limit, and the limit."""

    used: int
    limit: int | None
    reported_limit: int | None

    @property
    def known(self) -> bool:
        return self.limit is not None


def reading(info: dict, configured_limit: int | None) -> Reading:
    """Parse ``INFO memory`` (redis-py's dict). A missing or zero ``maxmemory`` means
    "not reported" (Azure Managed Redis; an unlimited local Redis)."""
    used = int(info.get("used_memory", 0)) - int(info.get("mem_not_counted_for_evict", 0) or 0)
    reported = int(info.get("maxmemory", 0) or 0) or None
    limits = [x for x in (reported, configured_limit) if x]
    return Reading(used=max(used, 0), limit=min(limits) if limits else None, reported_limit=reported)


class Admission:
    def __init__(self, read_info: Callable[[], dict], configured_limit: int | None, max_percent: float,
                 *, task_bytes: int = TASK_BYTES, refresh_seconds: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        self.read_info = read_info
        self.configured_limit = configured_limit
        self.max_percent = max_percent
        self.task_bytes = task_bytes
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.last: Reading | None = None
        self._read_at = float("-inf")
        self._since_read = 0
        self._waiting = False

    @property
    def threshold(self) -> int | None:
        """Used bytes at which publishing waits (None: no limit known, no backpressure)."""
        if self.last is None or self.last.limit is None:
            return None
        return int(self.last.limit * self.max_percent / 100)

    def refresh(self) -> Reading:
        self.last = reading(self.read_info(), self.configured_limit)
        self._read_at = self.clock()
        self._since_read = 0
        return self.last

    def room(self, tasks: int = 1) -> bool:
        """True: publish ``tasks`` tasks now. False: Redis is at the threshold; wait, then ask
        again (each call after a False reads INFO again). Raises what ``read_info`` raises
        (Redis unavailable)."""
        if self.last is None or self._waiting or self.clock() - self._read_at >= self.refresh_seconds:
            self.refresh()
        if self.threshold is None:
            self._waiting = False
            return True
        if not self._fits(tasks) and self._since_read:
            self.refresh()  # the count since the reading is an upper bound: look again
        self._waiting = not self._fits(tasks)
        return not self._waiting

    def _fits(self, tasks: int = 1) -> bool:
        assert self.last is not None and self.threshold is not None  # room() reads before it asks
        return self.last.used + (self._since_read + tasks) * self.task_bytes <= self.threshold

    def sent(self, tasks: int = 1) -> None:
        """Tasks were published (counted until the next reading)."""
        self._since_read += tasks

    def describe(self) -> str:
        """The numbers, for log lines and errors."""
        last = self.last
        if last is None:
            return "memory not read yet"
        if last.limit is None:
            return f"used {last.used} B, no limit known (REDIS_MAXMEMORY_BYTES unset, the server reports none)"
        return (f"used {last.used} B of maxmemory {last.limit} B; publishing waits at "
                f"{self.max_percent:g} % = {self.threshold} B (PUBLISH_MAX_MEMORY_PERCENT)")
