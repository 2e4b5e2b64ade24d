"""The worker main process's own clock: the heartbeat file the probes read, and (job mode)
the exit after an idle spell, run as a consumer bootstep (``RuntimeStep``).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from celery import bootsteps
from celery.worker import state

from apps.worker import metrics
from apps.worker.availability import WAIT
from apps.worker.heartbeat import write_heartbeat as write_heartbeat_file
from apps.worker.settings import WorkerSettings, settings_of

logger = logging.getLogger(__name__)


def write_heartbeat(path: Path, settings: WorkerSettings, now: float | None = None) -> dict:
    """Atomically write the liveness file read by ``apps.worker.healthcheck``."""
    now = time.time() if now is None else now
    starts = [r.time_start for r in list(state.active_requests) if getattr(r, "time_start", None)]
    waiting = WAIT.status()
    # While the main loop waits for Redis it takes no result from the pool: a task that
    # finished meanwhile still looks active, and no time limit is enforced. Its time counts
    # until the wait began, so an outage never makes the worker look stuck (the liveness
    # probe's "past its hard time limit" rule, apps/worker/healthcheck.py).
    counted_until = min(now, float(waiting["since"])) if waiting else now
    return write_heartbeat_file(path, {
        "ts": now,
        "pid": os.getpid(),
        "active": len(state.active_requests),
        "reserved": len(state.reserved_requests),
        "oldest_active_seconds": max((max(0.0, counted_until - s) for s in starts), default=0.0),
        "task_time_limit": settings.task_time_limit,
        "waiting_for_redis": waiting,
    })


def beat(path: Path, settings: WorkerSettings) -> None:
    """Write the heartbeat; a failure is logged, never raised into the event loop."""
    try:
        write_heartbeat(path, settings)
    except OSError:
        logger.exception("cannot write heartbeat file %s", path)


class IdleExit:
    """Job mode: ask for a warm shutdown (exit code 0) after ``idle_seconds`` with no task."""

    def __init__(self, idle_seconds: float, clock=time.monotonic):
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.last_busy = clock()

    def busy(self) -> bool:
        """A task runs or is reserved, or the worker waits for Redis (a Job must not exit
        then: the queue it could not pop from is not empty)."""
        return bool(state.active_requests or state.reserved_requests or WAIT.waiting)

    def check(self) -> bool:
        now = self.clock()
        if self.busy():
            self.last_busy = now
            return False
        if now - self.last_busy >= self.idle_seconds and state.should_stop is None:
            logger.info("idle for %.1fs with no task: warm shutdown (job mode)", now - self.last_busy)
            state.should_stop = 0  # EX_OK: the event loop raises WorkerShutdown(0)
            return True
        return False


class RuntimeStep(bootsteps.StartStopStep):
    """Consumer bootstep: metrics server, heartbeat timer and (job mode) idle timer."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.trefs = []
        self.idle: IdleExit | None = None

    def start(self, c):
        settings = settings_of(c.app)
        metrics.serve(settings)
        path = settings.worker_heartbeat_file
        write_heartbeat(path, settings)
        self.trefs.append(c.timer.call_repeatedly(
            settings.worker_heartbeat_interval, beat, (path, settings), priority=10))
        if settings.worker_idle_exit_seconds:
            if self.idle is None:
                self.idle = IdleExit(settings.worker_idle_exit_seconds)
            interval = min(1.0, settings.worker_idle_exit_seconds / 4)
            self.trefs.append(c.timer.call_repeatedly(interval, self.idle.check, priority=10))

    def stop(self, c):
        for tref in self.trefs:
            tref.cancel()
        self.trefs.clear()

    shutdown = stop
