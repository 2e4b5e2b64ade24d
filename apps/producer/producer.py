"""Send tasks at a fixed rate (or as fast as possible) through Celery's ``send_task``."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from apps.common.redis_settings import tcp_keepalive_options
from apps.common.redis_transport import PUBLISH_TRANSPORT
from apps.producer.settings import ProducerSettings

logger = logging.getLogger("apps.producer")


def build_app(settings: ProducerSettings) -> Celery:
    app = Celery("producer", set_as_current=False, amqp="apps.producer.message:LeanAMQP")
    app.conf.update(
        broker_url=settings.redis_url,
        # kombu's Redis transport, minus redis-py's CLIENT SETINFO handshake (Redis 7.2), with
        # connections that never retry on their own, so kombu pipelines a publish batch.
        broker_transport=PUBLISH_TRANSPORT,
        broker_use_ssl=settings.ssl_options(),
        # Same single list as the worker: CELERY_QUEUE, no priority sub-lists.
        # TCP keepalive as every Redis socket of the platform (apps/common/redis_settings.py).
        broker_transport_options={"priority_steps": [0], "socket_timeout": 10,
                                  "socket_connect_timeout": 5, "socket_keepalive": True,
                                  "socket_keepalive_options": tcp_keepalive_options(),
                                  # the body as JSON text, not base64 (apps/producer/message.py)
                                  "body_encoding": None,
                                  # the credential, read on every new connection
                                  **settings.broker_transport_options()},
        broker_connection_timeout=5,
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=2,
        task_serializer="json",
        task_default_queue=settings.celery_queue,
        # One retry loop, the publisher's (apps/producer/publisher.py): it waits for Redis with
        # a bounded backoff, logs once per interval and keeps the task id across attempts.
        task_publish_retry=False,
        result_backend=None,
        task_ignore_result=True,
    )
    return app


def write_heartbeat(path: Path, sent: int, waiting: dict | None = None) -> None:
    """``waiting``: what the producer waits for (Redis, or room: ``reason: memory``), read by
    ``python -m apps.producer.healthcheck --ready``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".heartbeat-")
    with os.fdopen(fd, "w") as f:
        json.dump({"ts": time.time(), "pid": os.getpid(), "sent": sent, "waiting": waiting}, f)
    os.replace(tmp, path)


@dataclass
class RunResult:
    sent: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("inf")


class Stop:
    """Set by SIGTERM/SIGINT in forever mode: finish the current send and exit 0."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True


#: Most tasks one send carries (one pipeline, one round trip to Redis).
BATCH_MAX = 64


def run(send: Callable[[list[dict]], int], records: Iterator[dict], count: int | None, rate: float,
        *, progress: Callable[[int], None] = lambda n: None, stop: Stop | None = None,
        heartbeat: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
        heartbeat_every: float = 5.0, lag: Callable[[float], None] = lambda seconds: None,
        batch_max: int = BATCH_MAX) -> RunResult:
    """Send ``count`` records (None: until stopped) at ``rate`` per second (0: unthrottled).

    Pacing is by schedule (task i goes at start + i/rate), so a slow send does not
    lower the average rate, and no burst exceeds one task ahead of schedule. ``send`` gets
    the records that are due, in order: one while on schedule, every task whose time has
    come when behind it (a distant Redis), up to ``batch_max`` when unthrottled; the
    publisher sends them in one round trip (apps/producer/publisher.py). It returns how many
    it sent, from the first: fewer when it was stopped (a SIGTERM while it waited for Redis:
    nothing more is sent) or sent one near the memory threshold (the rest go next). ``lag``
    gets, before each paced send, how many seconds behind its schedule it goes (0 when on
    time).
    """
    stop = stop or Stop()
    start = clock()
    last_beat = float("-inf")
    sent = 0
    pending: list[dict] = []
    while (count is None or sent < count) and not stop.requested:
        room = batch_max if count is None else min(batch_max, count - sent)
        if rate > 0:
            due = start + sent / rate
            while not stop.requested:
                now = clock()
                if heartbeat and now - last_beat >= heartbeat_every:
                    heartbeat(sent)
                    last_beat = now
                if now >= due:
                    break
                sleep(min(due - now, 1.0))
            if stop.requested:
                break
            now = clock()
            lag(max(0.0, now - due))
            n = min(room, int((now - start) * rate) - sent + 1)  # every task due by now
        else:
            if heartbeat and clock() - last_beat >= heartbeat_every:
                heartbeat(sent)
                last_beat = clock()
            n = room
        n = max(1, n)
        while len(pending) < n:
            pending.append(next(records))
        done = send(pending[:n])
        if not done:
            break
        del pending[:done]
        sent += done
        progress(done)
    if heartbeat:
        heartbeat(sent)
    return RunResult(sent=sent, seconds=clock() - start)


def standby(stop: Stop, heartbeat: Callable[[], None], *, every: float = 5.0,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
    """Send nothing; keep the heartbeat fresh until stopped (SIGTERM/SIGINT)."""
    last = float("-inf")
    while not stop.requested:
        if clock() - last >= every:
            heartbeat()
            last = clock()
        sleep(0.2)


def make_progress(total: int | None, tty: bool, log_every: float = 5.0):
    """tqdm in a terminal; otherwise a plain log line every ``log_every`` seconds."""
    if tty:

        from tqdm import tqdm

        # A pty that reports a 0x0 size (some CI runners) would make tqdm print nothing.
        try:
            size = os.get_terminal_size(sys.stderr.fileno())
        except OSError:
            size = os.terminal_size((0, 0))
        bar = tqdm(total=total, unit="task", mininterval=0.5,
                   ncols=None if size.columns >= 20 else 80, nrows=None if size.lines >= 2 else 24)
        return bar.update, bar.close
    state = {"n": 0, "last": time.monotonic()}

    def update(n: int) -> None:
        state["n"] += n
        now = time.monotonic()
        if now - state["last"] >= log_every or (total is not None and state["n"] == total):
            state["last"] = now
            logger.info("sent %d%s tasks", state["n"], f"/{total}" if total else "")

    return update, lambda: None


def is_tty() -> bool:
    return sys.stdout.isatty()
