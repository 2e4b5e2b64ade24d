"""The worker's Celery ``Request`` and ``Task`` classes: outcomes counted, failures
dead-lettered, in the main process (apps/worker/metrics.py).
"""

from __future__ import annotations

import base64
import logging
import time

import redis
from billiard.exceptions import WorkerLostError
from celery import Task
from celery.exceptions import Ignore, Reject, Retry, Terminated, TimeLimitExceeded
from celery.worker.request import Request
from kombu.utils.encoding import safe_str

from apps.common.redis_errors import UNAVAILABLE
from apps.worker import metrics
from apps.worker.availability import WAIT
from apps.worker.settings import WorkerSettings, settings_of
from apps.worker.tasks import RedisUnavailable

logger = logging.getLogger("apps.worker.runtime")

_main_client: redis.Redis | None = None


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
    metrics.DEAD_LETTERED.labels(stage).inc()
    logger.error("dead-lettered (%s): %s", stage, reason[:500])
    return True


def message_payload(message) -> dict:
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
        metrics.SUCCEEDED.inc()
        metrics.DURATION.labels("succeeded").observe(max(0.0, runtime))
        metrics.LAST_ACTIVITY.set_to_current_time()


def _observe_failure(request: Request) -> None:
    """A failed task's run time, from its start as the pool reported it (wall clock)."""
    if request.time_start:
        metrics.DURATION.labels("failed").observe(max(0.0, time.time() - request.time_start))


class WorkerRequest(Request):
    """Counts outcomes and dead-letters failures, in the main process.

    A failure whose dead letter Redis does not take is not acked: the message is requeued
    (or, if Redis refuses that too, left in ``unacked`` for the sweep), so it runs again
    rather than vanishing with neither a result nor a dead letter."""

    _keep_for_redelivery = False
    #: The task succeeded, and its own transaction removed the unacked record (tasks.ack_with).
    _acked_in_redis = False

    def acknowledge(self):
        if self._keep_for_redelivery:
            return self.reject(requeue=True)
        if self._acked_in_redis:
            acked_in_redis = getattr(self._message.channel.qos, "acked_in_redis", None)
            if acked_in_redis is not None:
                acked_in_redis(self._message.delivery_tag)
        return super().acknowledge()

    def _note_success(self, failed__retval__runtime) -> None:
        _count_success(failed__retval__runtime)
        if not failed__retval__runtime[0] and getattr(self.task, "ack_in_write", False):
            self._acked_in_redis = True

    def on_accepted(self, pid, time_accepted):
        metrics.LAST_ACTIVITY.set_to_current_time()
        return super().on_accepted(pid, time_accepted)

    def on_success(self, failed__retval__runtime, **kwargs):
        self._note_success(failed__retval__runtime)
        return super().on_success(failed__retval__runtime, **kwargs)

    def __init_subclass__(cls, **kwargs):
        # Celery's strategy builds a subclass per task (create_request_cls) whose
        # on_success does not call super(): wrap it so successes are still noted.
        super().__init_subclass__(**kwargs)
        inner = cls.__dict__.get("on_success")
        if inner is not None:
            def on_success(self, failed__retval__runtime, **kw):
                self._note_success(failed__retval__runtime)
                return inner(self, failed__retval__runtime, **kw)

            cls.on_success = on_success  # type: ignore[method-assign]

    def on_retry(self, exc_info):
        metrics.RETRIED.inc()
        return super().on_retry(exc_info)

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        metrics.LAST_ACTIVITY.set_to_current_time()
        exc = getattr(exc_info.exception, "exc", exc_info.exception)
        if isinstance(exc, (Retry, Ignore, Terminated)):
            pass
        elif isinstance(exc, (WorkerLostError, SystemExit, KeyboardInterrupt)) and not self._retries_exhausted():
            metrics.REQUEUED.inc()  # re-sent as a retry (retry_on_worker_lost) or requeued
        elif isinstance(exc, RedisUnavailable):
            # Redis refused a write the task needs (its result) for its whole time budget:
            # requeued (Reject(requeue=True)), never dead-lettered for a full Redis.
            metrics.REQUEUED.inc()
            WAIT.failed(exc.label, "result write")
        elif isinstance(exc, Reject):
            metrics.FAILED.labels("bad_payload").inc()
            _observe_failure(self)
            metrics.DEAD_LETTERED.labels("task").inc()  # the task pushed it before raising Reject
        else:
            reason = ("time_limit" if isinstance(exc, TimeLimitExceeded) else
                      "worker_lost" if isinstance(exc, (WorkerLostError, SystemExit, KeyboardInterrupt))
                      else "error")
            metrics.FAILED.labels(reason).inc()
            _observe_failure(self)
            if self.task.acks_late and self.task.acks_on_failure:
                self._keep_for_redelivery = not push_dead_letter(
                    settings_of(self.task.app), f"task failed: {safe_str(repr(exc))}",
                    message_payload(self._message), stage="task_failure", task_id=self.id, task=self.name)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


    def _retries_exhausted(self) -> bool:
        max_retries = self.task.max_retries
        return max_retries is not None and (self.request_dict.get("retries") or 0) >= max_retries


class WorkerTask(Task):
    Request = "apps.worker.task_requests:WorkerRequest"
