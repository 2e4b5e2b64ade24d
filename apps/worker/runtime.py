"""What runs in the worker's main process: metrics, heartbeat, idle exit, dead letters.

With the prefork pool, task bodies run in child processes, but the ``Request``
callbacks (``on_success``, ``on_failure``, ...), the ``Consumer`` and the event-loop
timers all run in the main process. Metrics are therefore counted here, in one
process, and served by one HTTP server: no Prometheus multiprocess directory needed.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from pathlib import Path

import redis
from billiard.exceptions import WorkerLostError
from celery import Task, bootsteps
from celery.exceptions import Ignore, Reject, Retry, Terminated, TimeLimitExceeded
from celery.worker import state
from celery.worker.consumer import Consumer
from celery.worker.request import Request
from kombu.utils.encoding import safe_str
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from apps.worker import broker, envelope
from apps.worker.heartbeat import write_heartbeat as write_heartbeat_file
from apps.worker.settings import WorkerSettings

logger = logging.getLogger(__name__)

SUCCEEDED = Counter("celery_tasks_succeeded", "Tasks that completed successfully.")
FAILED = Counter("celery_tasks_failed", "Tasks that failed (and were dead-lettered).", ["reason"])
RETRIED = Counter("celery_tasks_retried", "Tasks scheduled for a retry.")
REQUEUED = Counter("celery_tasks_requeued", "Tasks requeued because their pool process died.")
DEAD_LETTERED = Counter("celery_dead_lettered", "Messages pushed to the dead-letter list.", ["stage"])
IN_PROGRESS = Gauge("celery_tasks_in_progress", "Tasks running in this worker now.")
IN_PROGRESS.set_function(lambda: len(state.active_requests))
LAST_ACTIVITY = Gauge("celery_worker_last_activity_timestamp_seconds",
                      "Unix time of the last task start or finish in this worker.")
#: Simulated work is WORK_SECONDS_MIN..MAX (1-10 s by default); the low buckets keep
#: WORK_SECONDS=0 runs (tests, benchmarks) readable.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120)
DURATION = Histogram("celery_task_duration_seconds",
                     "Run time of each finished task, by outcome (succeeded | failed).",
                     ["outcome"], buckets=DURATION_BUCKETS)

broker.on_dead_letter = lambda stage: DEAD_LETTERED.labels(stage).inc()

_main_client: redis.Redis | None = None
_metrics_started = False


def _settings(app) -> WorkerSettings:
    return app.worker_settings


def _client(settings: WorkerSettings) -> redis.Redis:
    global _main_client
    if _main_client is None:
        _main_client = redis.Redis(**settings.redis_client_kwargs())
    return _main_client


def push_dead_letter(settings: WorkerSettings, reason: str, payload, stage: str, **meta) -> None:
    """Dead-letter from the main process; never raises (the message is acked anyway)."""
    try:
        settings.dead_letters.push(_client(settings), reason, payload, stage=stage, **meta)
        DEAD_LETTERED.labels(stage).inc()
        logger.error("dead-lettered (%s): %s", stage, reason[:500])
    except redis.RedisError:
        logger.exception("could not dead-letter message (%s): %s", stage, reason)


def _message_payload(message) -> dict:
    """The original message, replayable: text body as is, binary body as base64."""
    payload = {"headers": message.headers, "properties": message.properties,
               "content_type": message.content_type,
               "content_encoding": message.content_encoding}
    body = message.body
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            payload["body_base64"] = base64.b64encode(body).decode("ascii")
            return payload
    payload["body"] = body
    return payload


def _count_success(failed__retval__runtime) -> None:
    failed, _retval, runtime = failed__retval__runtime
    if not failed:
        SUCCEEDED.inc()
        DURATION.labels("succeeded").observe(max(0.0, runtime))
        LAST_ACTIVITY.set_to_current_time()


def _observe_failure(request: Request) -> None:
    """A failed task's run time, from its start as the pool reported it (wall clock)."""
    if request.time_start:
        DURATION.labels("failed").observe(max(0.0, time.time() - request.time_start))


class WorkerRequest(Request):
    """Counts outcomes and dead-letters failures, in the main process."""

    def on_accepted(self, pid, time_accepted):
        LAST_ACTIVITY.set_to_current_time()
        return super().on_accepted(pid, time_accepted)

    def on_success(self, failed__retval__runtime, **kwargs):
        _count_success(failed__retval__runtime)
        return super().on_success(failed__retval__runtime, **kwargs)

    def __init_subclass__(cls, **kwargs):
        # Celery's strategy builds a subclass per task (create_request_cls) whose
        # on_success does not call super(): wrap it so successes are still counted.
        super().__init_subclass__(**kwargs)
        inner = cls.__dict__.get("on_success")
        if inner is not None:
            def on_success(self, failed__retval__runtime, **kw):
                _count_success(failed__retval__runtime)
                return inner(self, failed__retval__runtime, **kw)

            cls.on_success = on_success

    def on_retry(self, exc_info):
        RETRIED.inc()
        return super().on_retry(exc_info)

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        LAST_ACTIVITY.set_to_current_time()
        exc = getattr(exc_info.exception, "exc", exc_info.exception)
        if isinstance(exc, (Retry, Ignore, Terminated)):
            pass
        elif isinstance(exc, (WorkerLostError, SystemExit, KeyboardInterrupt)) and not self._retries_exhausted():
            REQUEUED.inc()  # re-sent as a retry (retry_on_worker_lost) or requeued
        elif isinstance(exc, Reject):
            FAILED.labels("bad_payload").inc()
            _observe_failure(self)
            DEAD_LETTERED.labels("task").inc()  # the task pushed it before raising Reject
        else:
            reason = ("time_limit" if isinstance(exc, TimeLimitExceeded) else
                      "worker_lost" if isinstance(exc, (WorkerLostError, SystemExit, KeyboardInterrupt))
                      else "error")
            FAILED.labels(reason).inc()
            _observe_failure(self)
            if self.task.acks_late and self.task.acks_on_failure:
                push_dead_letter(_settings(self.task.app), f"task failed: {safe_str(repr(exc))}",
                                 _message_payload(self._message), stage="task_failure",
                                 task_id=self.id, task=self.name)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


    def _retries_exhausted(self) -> bool:
        max_retries = self.task.max_retries
        return max_retries is not None and (self.request_dict.get("retries") or 0) >= max_retries


class WorkerTask(Task):
    Request = "apps.worker.runtime:WorkerRequest"


class WorkerConsumer(Consumer):
    """Messages Celery cannot run go to the dead-letter list and are acked; the worker goes on.

    Every task message is checked (apps/worker/envelope.py) before Celery's own handler
    parses it in this process; whatever still raises while Celery turns it into a request
    (not a broker error, not the hand-over to the pool) is dead-lettered too.
    """

    _dispatching = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        dispatch = self.on_task_request

        def on_task_request(request):
            # Marks the hand-over to the pool: an error there is the worker's, not the message's.
            self._dispatching = True
            try:
                return dispatch(request)
            finally:
                self._dispatching = False

        self.on_task_request = on_task_request

    def create_task_handler(self, *args, **kwargs):
        handle = super().create_task_handler(*args, **kwargs)
        max_time_limit = _settings(self.app).task_time_limit

        def on_task_received(message):
            reason = envelope.problem(message, max_time_limit)
            if reason is not None:
                return self._refuse(message, reason)
            try:
                return handle(message)
            except Exception as exc:
                if self._dispatching or isinstance(exc, self._broker_errors()):
                    raise
                logger.exception("Celery could not turn a message into a task request")
                return self._refuse(message, f"Celery could not parse the task message: "
                                             f"{type(exc).__name__}: {safe_str(exc)}")

        return on_task_received

    def _broker_errors(self) -> tuple[type[BaseException], ...]:
        # kombu lists KeyError among the Redis transport's connection errors; a KeyError
        # raised while parsing a message is the message's fault, never the connection's.
        errors = (*(self.connection_errors or ()), *(self.channel_errors or ()))
        return tuple(e for e in errors if e is not KeyError)

    def _refuse(self, message, reason: str) -> None:
        self._dead(message, reason)
        if not message.acknowledged:
            message.ack()

    def _dead(self, message, reason: str) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        task_id = headers.get("id")
        push_dead_letter(_settings(self.app), reason, _message_payload(message), stage="consumer",
                         task_id=task_id if isinstance(task_id, str) else None)

    def on_decode_error(self, message, exc):
        self._dead(message, f"cannot decode message: {safe_str(exc)}")
        return super().on_decode_error(message, exc)

    def on_unknown_message(self, body, message):
        self._dead(message, "not a Celery task message (no task header)")
        return super().on_unknown_message(body, message)

    def on_unknown_task(self, body, message, exc):
        self._dead(message, f"unknown task: {safe_str(exc)}")
        return super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body, message, exc):
        self._dead(message, f"invalid task message: {safe_str(exc)}")
        return super().on_invalid_task(body, message, exc)


def write_heartbeat(path: Path, settings: WorkerSettings, now: float | None = None) -> dict:
    """Atomically write the liveness file read by ``apps.worker.healthcheck``."""
    now = time.time() if now is None else now
    starts = [r.time_start for r in list(state.active_requests) if getattr(r, "time_start", None)]
    return write_heartbeat_file(path, {
        "ts": now,
        "pid": os.getpid(),
        "active": len(state.active_requests),
        "reserved": len(state.reserved_requests),
        "oldest_active_seconds": max((now - s for s in starts), default=0.0),
        "task_time_limit": settings.task_time_limit,
    })


class IdleExit:
    """Job mode: ask for a warm shutdown (exit code 0) after ``idle_seconds`` with no task."""

    def __init__(self, idle_seconds: float, clock=time.monotonic):
        self.idle_seconds = idle_seconds
        self.clock = clock
        self.last_busy = clock()

    def busy(self) -> bool:
        return bool(state.active_requests or state.reserved_requests)

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
        global _metrics_started
        settings = _settings(c.app)
        if settings.worker_metrics_port and not _metrics_started:
            start_http_server(settings.worker_metrics_port)
            _metrics_started = True
            logger.info("metrics on :%d/metrics", settings.worker_metrics_port)
        path = settings.worker_heartbeat_file
        write_heartbeat(path, settings)
        self.trefs.append(c.timer.call_repeatedly(
            settings.worker_heartbeat_interval, self._beat, (path, settings), priority=10))
        if settings.worker_idle_exit_seconds:
            if self.idle is None:
                self.idle = IdleExit(settings.worker_idle_exit_seconds)
            interval = min(1.0, settings.worker_idle_exit_seconds / 4)
            self.trefs.append(c.timer.call_repeatedly(interval, self.idle.check, priority=10))

    @staticmethod
    def _beat(path: Path, settings: WorkerSettings) -> None:
        try:
            write_heartbeat(path, settings)
        except OSError:
            logger.exception("cannot write heartbeat file %s", path)

    def stop(self, c):
        for tref in self.trefs:
            tref.cancel()
        self.trefs.clear()

    shutdown = stop
