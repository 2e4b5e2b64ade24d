"""What runs in the worker's main process: metrics, heartbeat, idle exit, dead letters,
and waiting for Redis.

With the prefork pool, task bodies run in child processes, but the ``Request``
callbacks (``on_success``, ``on_failure``, ...), the ``Consumer`` and the event-loop
timers all run in the main process. Metrics are therefore counted here, in one
process, and served by one HTTP server: no Prometheus multiprocess directory needed.

Waiting for Redis: Celery retries a broker connection a fixed number of times with its own
intervals, logs every attempt, and treats anything outside the transport's
``connection_errors`` as fatal ("Unrecoverable error"). The consumer here connects once per
attempt and waits out a failure with the worker's one backoff (apps/worker/availability.py:
bounded, one log line per interval, counted), forever: a worker waiting for Redis keeps its
heartbeat (live) and says it is waiting (not ready), and starts working as soon as Redis
lets it. The transport's ``connection_errors`` include Redis's passing refusals
(apps/common/redis_transport.py), so a bootstep refused at ``maxmemory`` restarts here too.
"""

from __future__ import annotations

import base64
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from billiard.exceptions import WorkerLostError
from celery import Task, bootsteps
from celery.exceptions import Ignore, Reject, Retry, Terminated, TimeLimitExceeded
from celery.worker import state
from celery.worker.consumer import Consumer
from celery.worker.request import Request
from kombu.utils.encoding import safe_str
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from apps.common.redis_errors import REASONS, UNAVAILABLE
from apps.common.redis_wait import OncePerInterval
from apps.worker import broker, envelope
from apps.worker.availability import WAIT
from apps.worker.heartbeat import write_heartbeat as write_heartbeat_file
from apps.worker.settings import WorkerSettings
from apps.worker.tasks import RedisUnavailable

logger = logging.getLogger(__name__)

SUCCEEDED = Counter("celery_tasks_succeeded", "Tasks that completed successfully.")
FAILED = Counter("celery_tasks_failed", "Tasks that failed (and were dead-lettered).", ["reason"])
RETRIED = Counter("celery_tasks_retried", "Tasks scheduled for a retry.")
REQUEUED = Counter("celery_tasks_requeued", "Tasks put back for a later run: their pool process died, "
                   "or Redis refused their result write.")
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

REDIS_UNAVAILABLE = Counter("celery_worker_redis_unavailable",
                            "Attempts Redis refused or could not take (pop, bookkeeping, result write, "
                            "reconnect, sweep), by reason.", ["reason"])
WAITING = Gauge("celery_worker_waiting_for_redis", "1 while this worker waits for Redis (not ready), else 0.")
for _reason in REASONS:
    REDIS_UNAVAILABLE.labels(_reason)

broker.on_dead_letter = lambda stage: DEAD_LETTERED.labels(stage).inc()
# Celery logs these on every reconnect (the second through Python's warnings, which Celery
# sets to "always": it says worker_cancel_long_running_tasks_on_connection_loss will default
# to True in Celery 6; celery_app.py sets it explicitly). The worker's own wait logs once per
# interval; so do these.
logging.getLogger("celery.worker.consumer.consumer").addFilter(OncePerInterval((
    "consumer: Connection to broker lost", "consumer: Cannot connect to")))
logging.getLogger("py.warnings").addFilter(OncePerInterval((
    "worker_cancel_long_running_tasks_on_connection_loss",)))
WAIT.on_failure = lambda reason: REDIS_UNAVAILABLE.labels(reason).inc()
WAIT.on_state = lambda waiting: WAITING.set(1 if waiting else 0)

_main_client: redis.Redis | None = None
_metrics_started = False


def _settings(app) -> WorkerSettings:
    return app.worker_settings


def _client(settings: WorkerSettings) -> redis.Redis:
    global _main_client
    if _main_client is None:
        _main_client = redis.Redis(**settings.redis_client_kwargs())
    return _main_client


def push_dead_letter(settings: WorkerSettings, reason: str, payload, stage: str, **meta) -> bool:
    """Dead-letter from the main process; never raises. ``False``: Redis did not take it
    (full, failing over, unreachable), and the caller must not ack the message."""
    try:
        settings.dead_letters.push(_client(settings), reason, payload, stage=stage, **meta)
    except UNAVAILABLE as exc:
        WAIT.failed(exc, "dead-letter")
        logger.error("could not dead-letter message (%s) now, Redis unavailable: it is kept for "
                     "redelivery: %s", stage, reason[:500])
        return False
    except redis.RedisError:
        logger.exception("could not dead-letter message (%s): %s", stage, reason)
        return True
    DEAD_LETTERED.labels(stage).inc()
    logger.error("dead-lettered (%s): %s", stage, reason[:500])
    return True


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
    """Counts outcomes and dead-letters failures, in the main process.

    A failure whose dead letter Redis does not take is not acked: the message is requeued
    (or, if Redis refuses that too, left in ``unacked`` for the sweep), so it runs again
    rather than vanishing with neither a result nor a dead letter."""

    _keep_for_redelivery = False

    def acknowledge(self):
        if self._keep_for_redelivery:
            return self.reject(requeue=True)
        return super().acknowledge()

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

            cls.on_success = on_success  # type: ignore[method-assign]

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
        elif isinstance(exc, RedisUnavailable):
            # Redis refused a write the task needs (its result) for its whole time budget:
            # requeued (Reject(requeue=True)), never dead-lettered for a full Redis.
            REQUEUED.inc()
            WAIT.failed(exc.label, "result write")
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
                self._keep_for_redelivery = not push_dead_letter(
                    _settings(self.task.app), f"task failed: {safe_str(repr(exc))}",
                    _message_payload(self._message), stage="task_failure", task_id=self.id, task=self.name)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


    def _retries_exhausted(self) -> bool:
        max_retries = self.task.max_retries
        return max_retries is not None and (self.request_dict.get("retries") or 0) >= max_retries


class WorkerTask(Task):
    Request = "apps.worker.runtime:WorkerRequest"


def serve_metrics(settings: WorkerSettings) -> None:
    """Start /metrics once per process: as soon as the consumer exists, so the waiting-for-Redis
    metrics are served while it cannot connect or start."""
    global _metrics_started
    if settings.worker_metrics_port and not _metrics_started:
        try:
            start_http_server(settings.worker_metrics_port)
        except OSError as exc:
            # One line naming the variable, as the producer does, not Celery's traceback.
            print(f"worker: cannot serve /metrics on port {settings.worker_metrics_port} "
                  f"(WORKER_METRICS_PORT): {exc.strerror or exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        _metrics_started = True
        logger.info("metrics on :%d/metrics", settings.worker_metrics_port)


class WorkerConsumer(Consumer):
    """Messages Celery cannot run go to the dead-letter list and are acked; the worker goes on.

    Every task message is checked (apps/worker/envelope.py) before Celery's own handler
    parses it in this process; whatever still raises while Celery turns it into a request
    (not a broker error, not the hand-over to the pool) is dead-lettered too.
    """

    _dispatching = False


    def __init__(self, *args, **kwargs):
        # Without Mingle (Celery's --without-mingle). At every (re)start Mingle asks the other
        # workers for their revoked task ids and logical clocks: this platform revokes nothing
        # and keeps no results, so there is nothing to sync. It costs a second and one more
        # connection per start, and at the client limit its publish blocks in kombu's own
        # connection retries, heartbeat-less, for as long as the limit lasts.
        kwargs["without_mingle"] = True
        # Without Celery's worker heartbeat events and Gossip (--without-heartbeat,
        # --without-gossip): nothing here reads worker events (liveness is the heartbeat file),
        # yet the heart PUBLISHes from the main loop every 2 s with kombu's unbounded retries
        # and Gossip holds a subscriber connection per worker. On a path that vanished
        # silently they were two of the calls the loop waited on.
        kwargs["without_heartbeat"] = True
        kwargs["without_gossip"] = True
        super().__init__(*args, **kwargs)
        serve_metrics(_settings(self.app))
        dispatch: Callable[[Request], Any] = self.on_task_request  # type: ignore[has-type]  # set by Consumer.__init__

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
        if not self._dead(message, reason):
            return self._keep(message)
        if not message.acknowledged:
            message.ack()

    def _dead(self, message, reason: str) -> bool:
        headers = message.headers if isinstance(message.headers, dict) else {}
        task_id = headers.get("id")
        return push_dead_letter(_settings(self.app), reason, _message_payload(message), stage="consumer",
                                task_id=task_id if isinstance(task_id, str) else None)

    @staticmethod
    def _keep(message) -> None:
        """Its dead letter was not taken: requeue it (QoS.reject leaves it in unacked for the
        sweep if Redis refuses that too), to be dead-lettered once Redis accepts."""
        if not message.acknowledged:
            message.reject(requeue=True)

    def on_decode_error(self, message, exc):
        if not self._dead(message, f"cannot decode message: {safe_str(exc)}"):
            return self._keep(message)
        return super().on_decode_error(message, exc)

    def on_unknown_message(self, body, message):
        if not self._dead(message, "not a Celery task message (no task header)"):
            return self._keep(message)
        return super().on_unknown_message(body, message)

    def on_unknown_task(self, body, message, exc):
        if not self._dead(message, f"unknown task: {safe_str(exc)}"):
            return self._keep(message)
        return super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body, message, exc):
        if not self._dead(message, f"invalid task message: {safe_str(exc)}"):
            return self._keep(message)
        return super().on_invalid_task(body, message, exc)

    # ---- waiting for Redis ------------------------------------------------------------
    def ensure_connected(self, conn):
        """One connection attempt at a time, each failure waited out with the worker's
        backoff, forever (Celery's own: a fixed retry count, then the worker exits)."""
        while True:
            try:
                return conn.ensure_connection(max_retries=0)
            except UNAVAILABLE as exc:
                self.wait_for_redis(exc, "connect")

    def on_connection_error_before_connected(self, exc):
        super().on_connection_error_before_connected(exc)
        self.wait_for_redis(exc, "start")

    def on_connection_error_after_connected(self, exc):
        super().on_connection_error_after_connected(exc)
        self.wait_for_redis(exc, "restart")

    def wait_for_redis(self, exc: BaseException, doing: str) -> None:
        """Sleep the backoff delay, keeping the heartbeat fresh (with the waiting state),
        and leave at once on SIGTERM/SIGINT (Celery's warm or cold shutdown)."""
        settings = _settings(self.app)
        delay = WAIT.failed(exc, doing)
        last = {"beat": float("-inf")}

        def tick() -> None:
            now = time.monotonic()
            if now - last["beat"] >= settings.worker_heartbeat_interval:
                last["beat"] = now
                RuntimeStep._beat(settings.worker_heartbeat_file, settings)

        WAIT.sleep(delay, stop=lambda: state.should_stop is not None or state.should_terminate is not None,
                   tick=tick)
        state.maybe_shutdown()


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
        settings = _settings(c.app)
        serve_metrics(settings)
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
