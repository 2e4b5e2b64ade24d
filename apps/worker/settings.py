"""Worker settings from the environment (DESIGN.md contract + docs/worker.md).

Everything the worker derives (time limits, the restore sweep period) is computed
here so that the Celery app, the health check and the docs agree on one formula.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import Field, model_validator

from apps.common.redis_settings import RedisSettings

#: The task's registered name. The producer has its own copy of this string (it must
#: not import the worker package); a test checks that the two agree.
TASK_NAME = "users.process"

#: Soft / hard time limit = WORK_SECONDS_MAX + these margins (seconds).
SOFT_LIMIT_MARGIN = 2
HARD_LIMIT_MARGIN = 5


class WorkerSettings(RedisSettings):
    """REDIS_* (apps/common/redis_settings.py) plus the worker's own variables."""

    celery_queue: str = Field("celery", min_length=1)
    celery_dead_letter_queue: str | None = None
    celery_visibility_timeout: float = Field(60.0, gt=0)

    work_seconds_min: float = Field(1.0, ge=0)
    work_seconds_max: float = Field(10.0, ge=0)

    worker_idle_exit_seconds: float | None = Field(None, gt=0)
    worker_concurrency: int = Field(2, ge=1)
    worker_metrics_port: int = Field(9808, ge=0, le=65535)
    worker_heartbeat_file: Path = Path("/tmp/celery-worker-heartbeat.json")
    worker_heartbeat_interval: float = Field(5.0, gt=0)
    worker_heartbeat_max_age: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "WorkerSettings":
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
        if self.worker_heartbeat_max_age <= 2 * self.worker_heartbeat_interval:
            raise ValueError("WORKER_HEARTBEAT_MAX_AGE must exceed twice WORKER_HEARTBEAT_INTERVAL")
        if "," in self.celery_queue or any(c.isspace() for c in self.celery_queue):
            raise ValueError(f"CELERY_QUEUE {self.celery_queue!r} must be one name without spaces or commas")
        return self

    # ---- derived values -------------------------------------------------------------
    @property
    def dead_letter_queue(self) -> str:
        return self.celery_dead_letter_queue or f"{self.celery_queue}.dead_letter"

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
