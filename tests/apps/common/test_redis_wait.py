"""The shared "waiting for Redis" pieces: which errors pass, the backoff, the log throttle."""

from __future__ import annotations

import logging
import random

import pytest
import redis
from kombu.exceptions import OperationalError

from apps.common.redis_errors import REASONS, reason
from apps.common.redis_wait import OncePerInterval, RedisWait


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wrapped(exc: BaseException) -> OperationalError:
    """What kombu raises: its OperationalError, raised from the transport's error."""
    try:
        raise OperationalError(str(exc)) from exc
    except OperationalError as op:
        return op


@pytest.mark.parametrize("exc, expected", [
    (redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "oom"),
    (redis.ReadOnlyError("You can't write against a read only replica."), "readonly"),
    (redis.BusyLoadingError("Redis is loading the dataset in memory"), "loading"),
    (redis.exceptions.MasterDownError("Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
     "masterdown"),
    (redis.ConnectionError("max number of clients reached"), "max_clients"),
    (wrapped(redis.ConnectionError("max number of clients reached")), "max_clients"),
    (OperationalError("max number of clients reached"), "max_clients"),  # kombu keeps only the text
    (redis.TimeoutError("Timeout reading from socket"), "timeout"),
    (redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."), "connection"),
    (ConnectionResetError(104, "Connection reset by peer"), "connection"),
    (redis.AuthenticationError("invalid username-password pair or user is disabled."), "auth"),
    (wrapped(redis.AuthenticationError("invalid username-password pair or user is disabled.")), "auth"),
    (redis.exceptions.AuthenticationError("Authentication required."), "auth"),  # NOAUTH
    (wrapped(redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")), "oom"),
])
def test_conditions_that_pass_are_named(exc, expected):
    assert reason(exc) == expected and expected in REASONS


@pytest.mark.parametrize("exc", [
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    redis.ResponseError("ERR syntax error"), ValueError("bad payload"), KeyError("x"),
])
def test_bugs_are_not_conditions_that_pass(exc):
    assert reason(exc) is None


def make_wait(clock, records, **kwargs) -> RedisWait:
    logger = logging.getLogger(f"test.redis_wait.{id(records)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger.addHandler(Keep())
    return RedisWait(logger, "test", clock=clock, wall=clock, rng=random.Random(1), **kwargs)


def test_backoff_is_bounded_and_jittered():
    clock, records = Clock(), []
    failures, states = [], []
    wait = make_wait(clock, records, on_failure=failures.append, on_state=states.append)
    delays = [wait.failed(redis.OutOfMemoryError("x"), "pop") for _ in range(10)]
    nominal = [0.5, 1, 2, 4, 5, 5, 5, 5, 5, 5]
    assert all(0.8 * n <= d <= 1.2 * n for d, n in zip(delays, nominal, strict=True)), delays
    assert failures == ["oom"] * 10 and states == [True]
    assert wait.waiting and wait.status()["reason"] == "oom" and wait.status()["attempts"] == 10
    wait.succeeded()
    assert not wait.waiting and wait.status() is None and states == [True, False]


def test_one_log_line_per_interval_not_per_attempt():
    clock, records = Clock(), []
    wait = make_wait(clock, records)
    for _ in range(50):  # 50 failures in 25 s: one line
        wait.failed(redis.ConnectionError("max number of clients reached"), "connect")
        clock.now += 0.5
    assert len(records) == 1 and "Redis unavailable (max_clients) (connect)" in records[0].getMessage()
    clock.now += 10  # 35 s after the first: the "still waiting" line
    wait.failed(redis.ConnectionError("max number of clients reached"))
    assert len(records) == 2 and "still Redis unavailable (max_clients)" in records[1].getMessage()
    assert "after 35s and 51 attempts" in records[1].getMessage()
    wait.succeeded()
    assert len(records) == 3 and records[2].levelno == logging.INFO
    assert "Redis accepts again after 35.0s" in records[2].getMessage()


def test_flapping_redis_gets_neither_a_reconnect_storm_nor_a_log_storm():
    """Let in, then refused again (a client limit other pods keep reaching): the backoff keeps
    growing across episodes, and the lines stay one per interval."""
    clock, records = Clock(), []
    wait = make_wait(clock, records)
    delays = []
    for _ in range(20):  # an episode every 2 s for 40 s
        delays.append(wait.failed(redis.ConnectionError("max number of clients reached")))
        clock.now += 1
        wait.succeeded()
        clock.now += 1
    assert min(delays[4:]) >= 0.8 * 5
    assert len([r for r in records if r.levelno == logging.WARNING]) == 2  # at 0 s and 30 s
    clock.now += 31  # quiet for longer than the interval: the backoff starts over
    assert wait.failed(redis.ConnectionError("x")) <= 0.6


def test_sleep_ticks_and_stops():
    wait = RedisWait(logging.getLogger("test.sleep"), "test")
    ticks = []
    assert wait.sleep(0.3, tick=lambda: ticks.append(1), step=0.05) is True
    assert len(ticks) >= 4
    assert wait.sleep(5, stop=lambda: len(ticks) > 6, tick=lambda: ticks.append(1), step=0.05) is False


def test_once_per_interval_filter():
    clock = Clock()
    f = OncePerInterval(("Connection to broker lost",), interval=30, clock=clock)

    def record(msg, *args):
        return logging.LogRecord("celery", logging.WARNING, __file__, 1, msg, args, None)

    assert f.filter(record("%s (%r)", "consumer: Connection to broker lost. Trying...", "exc"))
    assert not f.filter(record("%s (%r)", "consumer: Connection to broker lost. Trying...", "exc"))
    assert f.filter(record("something else"))
    clock.now += 31
    assert f.filter(record("consumer: Connection to broker lost"))
