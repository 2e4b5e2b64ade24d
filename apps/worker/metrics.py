"""The worker's Prometheus metrics, counted in its main process and served there.

With the prefork pool, task bodies run in child processes, but the ``Request`` callbacks
(``on_success``, ``on_failure``, ...), the ``Consumer`` and the event-loop timers all run in
the main process: one ordinary registry and one HTTP server, no multiprocess directory.
:func:`wire` connects the counters to the transport and to the worker's wait for Redis; the
app factory (apps/worker/celery_app.py) calls it.
"""

from __future__ import annotations

import logging
import sys

from celery.worker import state
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from apps.common.redis_errors import REASONS
from apps.worker import broker
from apps.worker.availability import WAIT
from apps.worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

SUCCEEDED = Counter("celery_tasks_succeeded", "Tasks that completed successfully.")
FAILED = Counter("celery_tasks_failed", "Tasks that failed (and were dead-lettered).", ["reason"])
RETRIED = Counter("celery_tasks_retried", "Tasks scheduled for a retry.")
REQUEUED = Counter("celery_tasks_requeued", "Tasks put back for a later run: their pool process died, "
                   "or Redis refused their result write.")
DEAD_LETTERED = Counter("celery_dead_lettered", "Messages pushed to the dead-letter list.", ["stage"])
IN_PROGRESS = Gauge("celery_tasks_in_progress", "Tasks running in this worker now.")
LAST_ACTIVITY = Gauge("celery_worker_last_activity_timestamp_seconds",
                      "Unix time of the last task start or finish in this worker.")
#: Simulated work is WORK_SECONDS_MIN..MAX (1-10 s by default); the low buckets keep
#: WORK_SECONDS=0 runs (tests, benchmarks) readable.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120)
DURATION = Histogram("celery_task_duration_seconds",
                     "Run time of each finished task, by outcome (succeeded | failed).",
                     ["outcome"], buckets=DURATION_BUCKETS)

REDIS_UNAVAILABLE = Counter("celery_worker_redis_unavailable",
                            "Attempts Redis refused or could not take (pop, bookkeeping, result write, "
                            "reconnect, sweep), by reason.", ["reason"])
WAITING = Gauge("celery_worker_waiting_for_redis", "1 while this worker waits for Redis (not ready), else 0.")

_started = False


def wire() -> None:
    """Count what the transport dead-letters and every wait for Redis, and read the running
    tasks from Celery's state. Idempotent."""
    IN_PROGRESS.set_function(lambda: len(state.active_requests))
    for reason in REASONS:
        REDIS_UNAVAILABLE.labels(reason)
    broker.on_dead_letter = lambda stage: DEAD_LETTERED.labels(stage).inc()
    WAIT.on_failure = lambda reason: REDIS_UNAVAILABLE.labels(reason).inc()
    WAIT.on_state = lambda waiting: WAITING.set(1 if waiting else 0)


def serve(settings: WorkerSettings) -> None:
    """Start /metrics once per process: as soon as the consumer exists, so the waiting-for-Redis
    metrics are served while it cannot connect or start."""
    global _started
    if settings.worker_metrics_port and not _started:
        try:
            start_http_server(settings.worker_metrics_port)
        except OSError as exc:
            # One line naming the variable, as the producer does, not Celery's traceback.
            print(f"worker: cannot serve /metrics on port {settings.worker_metrics_port} "
                  f"(WORKER_METRICS_PORT): {exc.strerror or exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        _started = True
        logger.info("metrics on :%d/metrics", settings.worker_metrics_port)
