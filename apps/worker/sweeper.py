"""``python -m apps.worker.sweeper``: put abandoned tasks back in the queue, consume nothing.

Why it exists: kombu redelivers an unacknowledged task only when some process of the
queue sweeps (``QoS.restore_visible``). A worker SIGKILLed mid-task (node loss, eviction,
OOM) leaves its task in kombu's ``unacked`` hash, not in the list, and in job mode
nothing else runs: KEDA's ScaledJob starts Jobs only for what is in the list, and
job-mode workers exit when idle. This long-running process does the sweeps a worker
would do, with the worker's own transport (apps/worker/broker.py) and transport options
(same ``visibility_timeout``, same mutex, same Redis commands):

- kombu's unacked restore: messages recorded as unacked longer than
  ``CELERY_VISIBILITY_TIMEOUT`` go back to the list (under kombu's ``unacked_mutex``;
  each restore is a WATCH/MULTI transaction, so two sweepers never restore one twice);
- the ``<queue>.inflight`` restore: entries popped by a worker that died before
  recording them, seen for ``CELERY_VISIBILITY_TIMEOUT`` (a Lua script moves each once).

Every ``restore_interval`` seconds (the worker's formula: a tenth of the visibility
timeout, 1 to 10 s; more often if ``WORKER_HEARTBEAT_INTERVAL`` is shorter). After each
period it rewrites ``WORKER_HEARTBEAT_FILE`` (the worker's format), so
``python -m apps.worker.healthcheck`` is its liveness probe and
``python -m apps.worker.healthcheck --ready`` its readiness probe. While Redis is
unreachable, full (the sweep mutex is a ``SET``), loading or read-only, the sweeper waits
with the worker's backoff (apps/worker/availability.py: one log line per interval) and its
heartbeat says so: live (restarting it cannot help), not ready. SIGTERM or SIGINT: exit 0
within a moment. Same environment as the worker; a bad variable exits 2 naming it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from apps.common.redis_errors import UNAVAILABLE
from apps.worker.availability import WAIT
from apps.worker.heartbeat import write_heartbeat

logger = logging.getLogger("apps.worker.sweeper")

#: A sweep that fails with these is waited out (Redis down, full, loading, failing over...).
SWEEP_ERRORS = UNAVAILABLE


class Sweeper:
    def __init__(self, app, settings):
        self.app = app
        self.settings = settings
        self.period = min(settings.restore_interval, settings.worker_heartbeat_interval)
        self.stop = threading.Event()
        #: True while a sweep (or its connect) runs: a signal then ends it at once, which is
        #: safe: every restore is one atomic Redis transaction or script.
        self.busy = False
        self.restored = 0
        self._conn = None
        self._channel = None

    def _open(self):
        if self._channel is None:
            # One attempt (kombu's default_channel alone would retry forever, heartbeat-less).
            self._conn = self.app.connection_for_read().ensure_connection(max_retries=0)
            self._channel = self._conn.default_channel
            logger.info("sweeping queue %r every %gs (visibility timeout %gs)", self.settings.celery_queue,
                        self.period, self.settings.celery_visibility_timeout)
        return self._channel

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.release()
            except Exception:  # noqa: BLE001 - closing a broken connection
                logger.debug("closing the broker connection failed", exc_info=True)
        self._conn = self._channel = None

    def sweep(self) -> int:
        """One sweep of ``unacked`` and ``<queue>.inflight``; returns what it put back."""
        channel = self._open()
        unacked = channel.qos.restore_visible(num=channel.unacked_restore_limit, interval=1)
        inflight = channel.restore_inflight(channel._q_for_pri(self.settings.celery_queue, 0))
        return unacked + inflight

    def beat(self) -> None:
        write_heartbeat(self.settings.worker_heartbeat_file, {
            "ts": time.time(), "pid": os.getpid(), "active": 0, "reserved": 0,
            "oldest_active_seconds": 0.0, "task_time_limit": self.settings.task_time_limit,
            "role": "sweeper", "restored": self.restored, "waiting_for_redis": WAIT.status(),
        })

    def run(self) -> int:
        while not self.stop.is_set():
            wait = self.period
            try:
                self.busy = True
                attempts = WAIT.attempts
                self.restored += self.sweep()
            except SWEEP_ERRORS as exc:
                # Waited out; the next attempt comes after the backoff (at most the period).
                wait = min(self.period, WAIT.failed(exc, "sweep"))
                self._close()
            else:
                if WAIT.attempts == attempts:  # the sweep's own refusals are counted in WAIT
                    WAIT.succeeded()
            finally:
                self.busy = False
            try:
                self.beat()
            except OSError:
                logger.exception("cannot write heartbeat file %s", self.settings.worker_heartbeat_file)
            self.stop.wait(wait)
        self._close()
        logger.info("stopped after restoring %d message(s)", self.restored)
        return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The worker's own app: settings, transport and transport options come from one place.
    from apps.worker.celery_app import app, settings

    sweeper = Sweeper(app, settings)

    def on_signal(signum, frame) -> None:
        sweeper.stop.set()
        if sweeper.busy:  # e.g. stuck connecting to an unreachable Redis
            raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        return sweeper.run()
    except SystemExit:
        logger.info("stopped during a sweep (signal)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
