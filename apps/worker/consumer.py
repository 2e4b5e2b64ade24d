"""The worker's Celery consumer: messages Celery cannot run are dead-lettered, and a
connection to Redis that fails is waited out, forever.

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

import logging
import time
from collections.abc import Callable
from typing import Any

from celery.worker import state
from celery.worker.consumer import Consumer
from celery.worker.request import Request
from kombu.utils.encoding import safe_str

from apps.common.redis_errors import UNAVAILABLE
from apps.worker import envelope, metrics
from apps.worker.availability import WAIT
from apps.worker.runtime import beat
from apps.worker.settings import settings_of
from apps.worker.task_requests import message_payload, push_dead_letter

logger = logging.getLogger("apps.worker.runtime")


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
        # silently they were two of the calls the loop waited on. With a credential Redis refuses
        # (a key replaced, a token expired) the heart's publish retried inside the loop forever:
        # a busy worker's heartbeat 39.7 s stale, SIGTERM ignored for over 30 s; without them
        # 3-4 s and 1.4 s (tests/apps/test_rotation.py).
        kwargs["without_heartbeat"] = True
        kwargs["without_gossip"] = True
        super().__init__(*args, **kwargs)
        metrics.serve(settings_of(self.app))
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
        max_time_limit = settings_of(self.app).task_time_limit

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
        return push_dead_letter(settings_of(self.app), reason, message_payload(message), stage="consumer",
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
        settings = settings_of(self.app)
        delay = WAIT.failed(exc, doing)
        last = {"beat": float("-inf")}

        def tick() -> None:
            now = time.monotonic()
            if now - last["beat"] >= settings.worker_heartbeat_interval:
                last["beat"] = now
                beat(settings.worker_heartbeat_file, settings)

        WAIT.sleep(delay, stop=lambda: state.should_stop is not None or state.should_terminate is not None,
                   tick=tick)
        state.maybe_shutdown()
