"""Publish tasks, waiting for room (backpressure) and for Redis; never half-send.

A task is one ``LPUSH`` of one message (kombu's Redis transport): Redis has it, or not.
The task id is chosen before the first attempt and kept for every retry, so a publish
whose reply was lost (a connection reset after Redis took the ``LPUSH``) and is sent again
is the same task twice, which the worker runs idempotently (it rewrites
``users:<task id>``), never a different one, and never nothing.

Several due tasks go in one round trip (:meth:`Publisher.batch`): kombu's publish batch
(``Producer.batch``) sends their ``LPUSH``es in one pipeline, in order. A pipeline that
fails leaves its outcome uncertain (kombu's ``BatchPublishError``): the whole batch is sent
again with the same ids, so at worst some tasks go twice, as above. Near the memory
threshold a batch shrinks to one task, so the threshold is still overshot by at most one.

Before each attempt :class:`~apps.producer.admission.Admission` says whether Redis has room
(``PUBLISH_MAX_MEMORY_PERCENT`` of ``maxmemory``); when it has not, the producer holds
(checks again every half second). When Redis refuses or cannot be reached
(apps/common/redis_errors.py) it waits with the shared bounded backoff. Both waits log once
per interval and are counted (apps/producer/metrics.py). ``max_wait`` (``--count`` bursts:
``--max-wait``) bounds one stretch of waiting: then :class:`NotPublished` names the
condition and nothing of that task is in Redis. ``--forever`` waits as long as it takes;
SIGTERM ends a wait at once (the task not sent, exit 0).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from kombu.exceptions import BatchPublishError

from apps.common.redis_errors import UNAVAILABLE, reason
from apps.common.redis_wait import RedisWait
from apps.producer import metrics
from apps.producer.admission import Admission

logger = logging.getLogger("apps.producer")

#: Seconds between two looks at Redis's memory while the producer holds.
HOLD_POLL_SECONDS = 0.5


class NotPublished(Exception):
    """A task could not be published within ``max_wait``; ``reason`` is ``memory`` (the
    backpressure threshold) or a Redis reason (``oom``, ``connection``, ...)."""

    def __init__(self, reason: str, waited: float, detail: str):
        super().__init__(f"{reason} for {waited:.0f}s: {detail}")
        self.reason = reason
        self.waited = waited
        self.detail = detail
        self.sent = 0  # tasks of the run published before this one (set by the caller)


def redis_wait() -> RedisWait:
    return RedisWait(logger, "producer", on_failure=lambda reason: metrics.REDIS_UNAVAILABLE.labels(reason).inc(),
                     on_state=lambda waiting: metrics.WAITING_FOR_REDIS.set(int(waiting)))


def hold_wait() -> RedisWait:
    return RedisWait(logger, "producer", initial_delay=HOLD_POLL_SECONDS, max_delay=HOLD_POLL_SECONDS,
                     condition="holding: Redis memory at the publish threshold",
                     recovered="publishing again", on_failure=lambda reason: metrics.BACKPRESSURE.inc(),
                     on_state=lambda held: metrics.HOLDING.set(int(held)))


def _unavailable(exc: BaseException) -> BaseException | None:
    """The condition behind a failure that passes (a batch's is its cause), else None."""
    if isinstance(exc, BatchPublishError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc if isinstance(exc, UNAVAILABLE) else None


class Publisher:
    def __init__(self, publish: Callable[[list[tuple[dict, str]]], None], admission: Admission, *,
                 max_wait: float | None, stopped: Callable[[], bool] = lambda: False,
                 tick: Callable[[], None] = lambda: None, unavailable: RedisWait | None = None,
                 hold: RedisWait | None = None, clock: Callable[[], float] = time.monotonic):
        self.publish = publish
        self.admission = admission
        self.max_wait = max_wait
        self.stopped = stopped
        self.tick = tick
        self.unavailable = unavailable or redis_wait()
        self.hold = hold or hold_wait()
        self.clock = clock

    @property
    def waiting(self) -> dict | None:
        """For the heartbeat: what the producer waits for now, or None."""
        status = self.unavailable.status() or self.hold.status()
        if status is not None and self.hold.waiting and not self.unavailable.waiting:
            status = {**status, "reason": "memory"}
        return status

    def __call__(self, record: dict) -> str | None:
        """Publish ``record`` as one task; its id, or None if stopped before it was sent."""
        ids = self.batch([record])
        return ids[0] if ids else None

    def batch(self, records: list[dict]) -> list[str]:
        """Publish ``records`` as tasks, in order, in one round trip; the ids of those sent:
        all of them, only the first (near the memory threshold), or none (stopped first)."""
        items = [(record, str(uuid.uuid4())) for record in records]
        started = None
        while not self.stopped():
            attempt = self.clock()
            try:
                fits = self.admission.room(len(items))
                if not fits and len(items) > 1:
                    items = items[:1]  # near the threshold: one task, then look again
                    fits = self.admission.room()
                if fits:
                    self.publish(items)
                    self.admission.sent(len(items))
                    metrics.SENT.inc(len(items))
                    self.unavailable.succeeded()
                    self.hold.succeeded()
                    return [task_id for _, task_id in items]
                self.unavailable.succeeded()  # INFO answered
                reason_, delay = "memory", self.hold.failed("memory", "publish", detail=self.admission.describe())
                detail = self.admission.describe()
            except (*UNAVAILABLE, BatchPublishError) as exc:
                cause = _unavailable(exc)
                if cause is None:
                    raise
                reason_, delay = reason(cause) or "connection", self.unavailable.failed(cause, "publish")
                detail = f"{type(cause).__name__}: {cause}"
            started = attempt if started is None else started
            waited = self.clock() - started
            if self.max_wait is not None and waited + delay > self.max_wait:
                raise NotPublished(reason_, waited, detail)
            self.unavailable.sleep(delay, stop=self.stopped, tick=self.tick)
        return []
