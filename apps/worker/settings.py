"""Worker settings from the environment (docs/contract.md + docs/worker.md).

Everything the worker derives (time limits, the restore sweep period) is computed
here so that the Celery app, the health check and the docs agree on one formula.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from apps.common.redis_settings import RedisSettings
from apps.worker.dead_letters import MIN_ENTRY_BYTES, DeadLetters
from apps.worker.heartbeat import HeartbeatSettings

#: The task's registered name. The producer has its own copy of this string (it must
#: not import the worker package); a test checks that the two agree.
TASK_NAME = "users.process"

#: Soft / hard time limit = WORK_SECONDS_MAX + these margins (seconds).
SOFT_LIMIT_MARGIN = 2
HARD_LIMIT_MARGIN = 5


class WorkerSettings(RedisSettings, HeartbeatSettings):
    """REDIS_* (apps/common/redis_settings.py), WORKER_HEARTBEAT_* (heartbeat.py) and the
    worker's own variables. The sweeper (apps/worker/sweeper.py) reads the same."""

    celery_queue: str = Field("celery", min_length=1)
    celery_dead_letter_queue: str | None = None
    celery_visibility_timeout: float = Field(60.0, gt=0, allow_inf_nan=False)

    work_seconds_min: float = Field(1.0, ge=0, allow_inf_nan=False)
    work_seconds_max: float = Field(10.0, ge=0, allow_inf_nan=False)

    #: Retention of the result HASH users:<task id> (set in the same MULTI as the HSET).
    result_ttl_seconds: int = Field(86400, gt=0)
    #: The dead-letter list keeps the newest this many entries.
    dead_letter_max_length: int = Field(1000, ge=1)
    #: Bound of one dead-letter entry (JSON bytes): payload and reason are cut to fit.
    dead_letter_max_entry_bytes: int = Field(16384, ge=MIN_ENTRY_BYTES)

    worker_idle_exit_seconds: float | None = Field(None, gt=0, allow_inf_nan=False)
    worker_concurrency: int = Field(2, ge=1)
    worker_metrics_port: int = Field(9808, ge=0, le=65535)

    @model_validator(mode="after")
    def _check(self) -> WorkerSettings:
        if self.work_seconds_min > self.work_seconds_max:
            raise ValueError(
                f"WORK_SECONDS_MIN ({self.work_seconds_min}) must not exceed "
                f"WORK_SECONDS_MAX ({self.work_seconds_max})")
        if self.celery_visibility_timeout <= self.task_time_limit:
            raise ValueError(
                f"CELERY_VISIBILITY_TIMEOUT ({self.celery_visibility_timeout:g}s) must exceed the "
                f"task hard time limit ({self.task_time_limit:g}s = WORK_SECONDS_MAX "
                f"{self.work_seconds_max:g}s + {HARD_LIMIT_MARGIN}s), otherwise a running task "
                "would be redelivered to another worker while it still runs")
        if self.dead_letter_queue in (self.celery_queue, self.inflight_queue):
            raise ValueError("CELERY_DEAD_LETTER_QUEUE must differ from CELERY_QUEUE and its .inflight list")
        if "," in self.celery_queue or any(c.isspace() for c in self.celery_queue):
            raise ValueError("CELERY_QUEUE must be one name without spaces or commas")
        return self

    # ---- derived values -------------------------------------------------------------
    @property
    def dead_letter_queue(self) -> str:
        return self.celery_dead_letter_queue or f"{self.celery_queue}.dead_letter"

    @property
    def dead_letters(self) -> DeadLetters:
        """The one dead-letter writer, with both bounds (apps/worker/dead_letters.py)."""
        return DeadLetters(self.dead_letter_queue, self.dead_letter_max_length,
                           self.dead_letter_max_entry_bytes)

    @property
    def inflight_queue(self) -> str:
        """Where a popped message waits until it is recorded as unacked (see broker.py)."""
        return f"{self.celery_queue}.inflight"

    @property
    def task_soft_time_limit(self) -> float:
        return self.work_seconds_max + SOFT_LIMIT_MARGIN

    @property
    def task_time_limit(self) -> float:
        return math.ceil(self.work_seconds_max) + HARD_LIMIT_MARGIN

    @property
    def restore_interval(self) -> float:
        """Seconds between unacked-restore sweeps: a tenth of the visibility timeout,
        between 1 and 10 s, so a dead worker's task is back within ~1.1 x timeout."""
        return min(10.0, max(1.0, self.celery_visibility_timeout / 10))


def settings_of(app) -> WorkerSettings:
    """The settings the app factory gave a Celery app (apps/worker/celery_app.py)."""
    return app.worker_settings
