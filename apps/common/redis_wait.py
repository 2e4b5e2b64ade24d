"""Waiting for Redis: bounded backoff, one log line per interval, and a state to report.

Every long-running process of the worker image (the worker's main process, the sweeper)
and the producer's ``--forever`` mode keeps one :class:`RedisWait`. When Redis refuses or
cannot be reached (apps/common/redis_errors.py), the process calls :meth:`failed` and
waits the delay it returns before trying again: 0.5 s, doubling, at most
``max_delay`` (5 s), with ±20 % jitter so a fleet does not retry in step. The delay starts
over only after ``log_every`` seconds without a failure, so a Redis that lets a process in
and then refuses it again (a client limit reached by other pods) does not get a reconnect
storm. The first failure is logged at once (WARNING, with the reason); then at most one
failure line per ``log_every`` seconds (30 s), saying for how long and how many attempts
failed; the end of a logged episode is logged once (INFO). Never a line per attempt. A
credential Redis refuses (``auth``) is logged at ERROR, saying what to fix.

:meth:`status` is what the process writes into its heartbeat file, so its readiness probe
can say "waiting for Redis (oom) for 42 s" while its liveness probe passes: restarting a
process that is waiting for Redis cannot help (docs/worker.md, "Liveness and readiness").

Metrics are the caller's: ``on_failure(reason)`` is called on every failed attempt (a
counter ``*_redis_unavailable_total{reason}``), ``on_state(waiting)`` when an episode starts
and ends (a gauge). Nothing here imports Celery or prometheus_client.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from apps.common.redis_errors import AUTH_SAYS
from apps.common.redis_errors import reason as reason_of

INITIAL_DELAY = 0.5
MAX_DELAY = 5.0
#: Each delay is the nominal one ±20 %: the longest wait is ``max_delay * (1 + JITTER)``.
JITTER = 0.2
LOG_EVERY = 30.0


class RedisWait:
    def __init__(self, logger: logging.Logger, what: str, *, initial_delay: float = INITIAL_DELAY,
                 max_delay: float = MAX_DELAY, log_every: float = LOG_EVERY,
                 condition: str = "Redis unavailable", recovered: str = "Redis accepts again",
                 on_failure: Callable[[str], None] = lambda reason: None,
                 on_state: Callable[[bool], None] = lambda waiting: None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 rng: random.Random | None = None):
        self.logger = logger
        self.what = what
        self.condition = condition
        self.recovered = recovered
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.log_every = log_every
        self.on_failure = on_failure
        self.on_state = on_state
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._delay = initial_delay
        self._failed_at: float | None = None  # clock() of the last failure (backoff memory)
        self._logged_at: float | None = None  # clock() of the last failure line (log throttle)
        self._reset()

    def _reset(self) -> None:
        """End an episode; the backoff and the log throttle remember across episodes."""
        self.reason: str | None = None
        self.detail = ""
        self.attempts = 0
        self.since: float | None = None       # clock() at the first failure of the episode
        self.since_wall: float | None = None  # the same, as Unix time (heartbeat files)
        self._episode_logged = False

    @property
    def waiting(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException | str, doing: str = "", detail: str = "") -> float:
        """Record a failed attempt (an exception, or a reason label with ``detail``);
        returns the seconds to wait before the next one."""
        reason = exc if isinstance(exc, str) else (reason_of(exc) or "connection")
        if not isinstance(exc, str):
            detail = f"{type(exc).__name__}: {str(exc)[:200]}"
        with self._lock:
            now = self.clock()
            started = self.since is None
            if self.since is None:
                self.since, self.since_wall = now, self.wall()
            self.attempts += 1
            self.reason, self.detail = reason, detail
            if self._failed_at is None or now - self._failed_at >= self.log_every:
                self._delay = self.initial_delay  # quiet long enough: start over
            self._failed_at = now
            delay = self._delay
            self._delay = min(self._delay * 2, self.max_delay)
            log_now = self._logged_at is None or now - self._logged_at >= self.log_every
            if log_now:
                self._logged_at = now
                self._episode_logged = True
            elapsed, attempts = now - self.since, self.attempts
        self.on_failure(reason)
        if started:
            self.on_state(True)
        if log_now and reason == "auth":
            # Not the network: an operator's (or the token issuer's) fix, named as such, at
            # ERROR. The process stays live, reads the credential again on every attempt and
            # carries on by itself once it is right (docs/redis-targets.md#rotating-the-access-key).
            self.logger.error("%s: %s; retrying with backoff up to %gs, the credential read again on each "
                              "attempt (%s%s, %.0fs, %d attempts)", self.what, AUTH_SAYS, self.max_delay,
                              detail or reason, f", {doing}" if doing else "", elapsed, attempts)
        elif log_now:
            where = f" ({doing})" if doing else ""
            if started:
                self.logger.warning("%s: %s (%s)%s: %s; retrying with backoff up to %gs, logging once per %gs",
                                    self.what, self.condition, reason, where, detail or reason,
                                    self.max_delay, self.log_every)
            else:
                self.logger.warning("%s: still %s (%s)%s after %.0fs and %d attempts: %s", self.what,
                                    self.condition, reason, where, elapsed, attempts, detail or reason)
        return delay * self.rng.uniform(1 - JITTER, 1 + JITTER)

    def succeeded(self) -> None:
        """Redis answered: end the episode (its end logged if its start was)."""
        if self.since is None:
            return
        with self._lock:
            if self.since is None:
                return
            elapsed, attempts, reason = self.clock() - self.since, self.attempts, self.reason
            logged = self._episode_logged
            self._reset()
        self.on_state(False)
        if logged:
            self.logger.info("%s: %s after %.1fs (%s, %d attempts)", self.what, self.recovered,
                             elapsed, reason, attempts)

    def status(self) -> dict | None:
        """For the heartbeat file: ``None``, or the reason, since when and how many attempts."""
        with self._lock:
            if self.since is None:
                return None
            return {"reason": self.reason, "since": self.since_wall, "attempts": self.attempts,
                    "detail": self.detail}

    def sleep(self, seconds: float, *, stop: Callable[[], bool] = lambda: False,
              tick: Callable[[], None] = lambda: None, step: float = 0.2) -> bool:
        """Wait ``seconds``, calling ``tick`` (heartbeat) and checking ``stop`` every ``step``;
        returns False when ``stop`` asked to give up."""
        deadline = self.clock() + seconds
        while True:
            tick()
            if stop():
                return False
            left = deadline - self.clock()
            if left <= 0:
                return True
            time.sleep(min(step, left))


class OncePerInterval(logging.Filter):
    """A logging filter: of the records whose message contains one of ``needles``, let one
    through per ``interval`` seconds (for lines a library logs on every retry, e.g.
    Celery's "Connection to broker lost")."""

    def __init__(self, needles: tuple[str, ...], interval: float = LOG_EVERY,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.needles = needles
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        needle = next((n for n in self.needles if n in message), None)
        if needle is None:
            return True
        now = self.clock()
        last = self._last.get(needle)
        if last is not None and now - last < self.interval:
            return False
        self._last[needle] = now
        return True
