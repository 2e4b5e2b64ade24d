"""The liveness file shared by the worker, the sweeper and ``apps.worker.healthcheck``.

Kept free of Celery and Redis imports: the health check runs it every few seconds.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_HEARTBEAT_FILE = Path("/tmp/celery-worker-heartbeat.json")


class HeartbeatSettings(BaseSettings):
    """``WORKER_HEARTBEAT_*``; empty values mean unset, like every variable of the apps."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, env_ignore_empty=True)

    worker_heartbeat_file: Path = DEFAULT_HEARTBEAT_FILE
    worker_heartbeat_interval: float = Field(5.0, gt=0, allow_inf_nan=False)
    worker_heartbeat_max_age: float = Field(30.0, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _check_heartbeat(self) -> HeartbeatSettings:
        if self.worker_heartbeat_max_age <= 2 * self.worker_heartbeat_interval:
            raise ValueError("WORKER_HEARTBEAT_MAX_AGE must exceed twice WORKER_HEARTBEAT_INTERVAL")
        return self


def write_heartbeat(path: Path, beat: dict) -> dict:
    """Atomically replace the heartbeat file with ``beat`` (JSON; ``ts`` is required)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".heartbeat-")
    with os.fdopen(fd, "w") as f:
        json.dump(beat, f)
    os.replace(tmp, path)
    return beat
