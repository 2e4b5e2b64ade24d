"""Producer settings from the environment (same Redis contract as the worker)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from apps.common.redis_settings import RedisSettings

#: The worker's task name (apps/worker/settings.py holds the same string; a test
#: checks they agree). The producer never imports the worker package.
TASK_NAME = "users.process"
#: What a task's headers say of its arguments (``argsrepr``, read by ``celery inspect`` and
#: task events only): Celery's default repeats the whole user record (name, e-mail, address)
#: there, about 110 bytes of every queued task and personal data where no one needs it.
ARGSREPR = "(<user record>,)"


class ProducerSettings(RedisSettings):
    """REDIS_* (apps/common/redis_settings.py) plus the producer's own variables."""

    celery_queue: str = Field("celery", min_length=1)

    producer_heartbeat_file: Path = Path("/tmp/producer-heartbeat.json")
    producer_heartbeat_max_age: float = Field(30.0, gt=0, allow_inf_nan=False)
    producer_metrics_port: int = Field(9809, ge=0, le=65535)
    """/metrics of the long-running modes (--forever, --standby); 0 = off."""

    redis_maxmemory_bytes: int | None = Field(None, ge=1024 * 1024)
    """Redis's memory limit, set by infra from the size it gave Redis (Azure Managed Redis
    does not report ``maxmemory`` in INFO). The smaller of this and the reported one counts."""
    publish_max_memory_percent: float = Field(80.0, ge=10, le=95, allow_inf_nan=False)
    """Publishing holds while Redis's used memory is at this percent of its limit; the rest
    is kept for the workers (apps/producer/admission.py, docs/worker.md "Backpressure")."""
