"""When Redis refuses writes, the pod serves its own dataset load instead of loading per request.

A full Redis (``maxmemory`` reached under ``noeviction``: ``OOM command not allowed``) or a
read-only one (a replica during a failover: ``READONLY``) still answers reads, but refuses
the loader lock (``SET NX``) and the dataset's ``SET``s. Without this module every cold-tag
request would read the whole dataset again and then fail: one load per request, the
stampede the fleet lock exists to prevent.

Instead the first refused write starts an *episode*. The dataset this pod reads (once,
whether it got the fleet lock or not) stays in memory and answers every Redis miss
(``x-cache: degraded``: not cached fleet-wide; each pod of the fleet loads once for the
episode). Every ``REDIS_WRITE_RETRY_SECONDS``, on a request or on the readiness probe, the
pod tries the lock again and writes what it holds; the first write Redis accepts ends the
episode and the memory is released. The pod stays in service: ``/readyz`` answers 200 with
``"degraded": "redis_refuses_writes"`` and the reason, ``cache_degraded`` is 1 and
``redis_write_refusals_total{reason}`` counts the refused writes.

It does not handle Redis refusing *reads* (stopped, hung, ``LOADING`` after a restart, the
client limit): those answer 503 ``redis_unavailable`` with the reason, as before.
"""

from __future__ import annotations

import time

from redis.exceptions import OutOfMemoryError, ReadOnlyError

from apps.cache_api.dataset import Dataset
from apps.cache_api.logs import Throttle, get_logger
from apps.cache_api.metrics import Metrics
from apps.common.redis_errors import reason

log = get_logger("write_refusals")

OOM = "oom"
READONLY = "readonly"
REASONS = (OOM, READONLY)
DETAILS = {
    OOM: "Redis is full (maxmemory reached under noeviction) and refuses writes: "
         "serving this pod's own dataset load, not cached fleet-wide",
    READONLY: "Redis is a read-only replica (a failover in progress) and refuses writes: "
              "serving this pod's own dataset load, not cached fleet-wide",
}
#: ``/readyz``'s ``degraded`` field while an episode lasts (the pod stays ready).
DEGRADED = "redis_refuses_writes"


def refusal(exc: BaseException) -> str | None:
    """``oom`` or ``readonly`` when Redis refused a write for a reason that passes; else None
    (the platform's one table of Redis conditions: apps/common/redis_errors.py)."""
    label = reason(exc) if isinstance(exc, (OutOfMemoryError, ReadOnlyError)) else None
    return label if label in REASONS else None


class WriteRefusals:
    """The episode's state: the dataset held, why, since when, and when to try writing again."""

    def __init__(self, retry_seconds: float, metrics: Metrics) -> None:
        self.retry_seconds = retry_seconds
        self.metrics = metrics
        self.dataset: Dataset | None = None
        self.reason: str | None = None
        self._since = 0.0
        self._next_try = float("-inf")
        self._refused_log = Throttle(retry_seconds)

    @property
    def active(self) -> bool:
        return self.dataset is not None

    def refused(self, reason: str, write: str) -> None:
        """Count one refused write (``write``: what was refused), logged at most once per retry period."""
        self.metrics.write_refusals.labels(reason).inc()
        suppressed = self._refused_log.allow()
        if suppressed is not None:
            log.warning("redis refused a write", extra={"reason": reason, "write": write,
                                                        "suppressed_since_last": suppressed})

    def hold(self, dataset: Dataset, reason: str) -> None:
        """Start (or continue) the episode with this pod's own load."""
        started = self.dataset is None
        self.dataset, self.reason = dataset, reason
        if started:
            self._since = time.monotonic()
            self._next_try = self._since + self.retry_seconds
            self.metrics.degraded.set(1)
            log.warning("redis refuses writes; serving this pod's own dataset load (not cached fleet-wide) "
                        "until a write is accepted", extra={"reason": reason, "tags": len(dataset.tags),
                                                            "retry_every_s": self.retry_seconds})

    def retry_due(self) -> bool:
        return self.active and time.monotonic() >= self._next_try

    def tried(self) -> None:
        self._next_try = time.monotonic() + self.retry_seconds

    def release(self) -> None:
        """Redis accepted a write: normal caching resumes, the held dataset is dropped."""
        if not self.active:
            return
        log.info("redis accepts writes again; normal caching resumed",
                 extra={"reason": self.reason, "degraded_s": round(time.monotonic() - self._since, 1)})
        self.dataset, self.reason = None, None
        self.metrics.degraded.set(0)

    def status(self) -> dict[str, str] | None:
        """What ``/readyz`` adds while the episode lasts (no value, host or path)."""
        if self.reason is None:
            return None
        return {"degraded": DEGRADED, "reason": self.reason, "detail": DETAILS[self.reason]}
