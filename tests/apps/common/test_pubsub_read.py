"""kombu's pub/sub read on the worker's event loop never outwaits the socket timeout
redis-py 8 reads a blocking pub/sub reply with no timeout, and kombu
reads that way whenever its poller wakes it, also for a connection it has just dropped as
stale. The worker's main loop sat there for good after a black hole. On every Redis profile,
through the worker's own transport and settings."""

from __future__ import annotations

import os
import threading
import time
from unittest import mock

from apps.common.redis_transport import BoundedPubSub
from apps.worker.celery_app import build_app
from apps.worker.settings import WorkerSettings
from tests.apps.worker.helpers import clean_env

CHANNEL = "/0.celery.pidbox"


def _read(pubsub, limit: float):
    """``pubsub.parse_response()`` as kombu calls it, in a thread: (returned?, value, seconds)."""
    out: dict = {}

    def run():
        start = time.monotonic()
        out["value"] = pubsub.parse_response()
        out["seconds"] = time.monotonic() - start

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    return not thread.is_alive(), out.get("value"), out.get("seconds")


def _next(pubsub, limit: float):
    """The next reply, read as kombu's poller would once the socket is readable."""
    deadline = time.monotonic() + limit
    while True:
        done, value, _ = _read(pubsub, limit)
        assert done, "a pub/sub read blocked"
        if value is not None:
            return value
        assert time.monotonic() < deadline, "no reply"
        time.sleep(0.05)


def test_the_pub_sub_read_returns_with_nothing_to_read_and_after_a_dropped_connection(redis_any):
    with mock.patch.dict(os.environ, clean_env(**redis_any.env), clear=True):
        app = build_app(WorkerSettings(), main="pubsub-test")
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        pubsub = channel.subclient
        assert isinstance(pubsub, BoundedPubSub)
        timeout = pubsub.connection_pool.connection_kwargs["socket_timeout"]
        pubsub.psubscribe(CHANNEL + "*")
        assert _next(pubsub, timeout + 2)[0] == b"psubscribe"

        # Woken with nothing to read: returns at once (redis-py alone: waits forever).
        done, value, seconds = _read(pubsub, timeout + 2)
        assert done, "the pub/sub read blocked with nothing to read"
        assert value is None and seconds < 1, (value, seconds)

        # A message is read as before.
        with redis_any.client() as c:
            c.publish(CHANNEL + ".x", b"hello")
        value = _next(pubsub, timeout + 2)
        assert value[0] == b"pmessage" and value[3] == b"hello", value

        # kombu drops a stale connection, then its poller wakes the read: redis-py connects and
        # subscribes again, and the read returns within the socket timeout.
        pubsub.connection.disconnect()
        done, value, seconds = _read(pubsub, timeout + 2)
        assert done, f"the pub/sub read after a dropped connection outwaited socket_timeout {timeout}s"
        assert seconds <= timeout + 1, seconds
        # Subscribed again: a message published now arrives.
        with redis_any.client() as c:
            c.publish(CHANNEL + ".y", b"again")
        deadline = time.monotonic() + timeout
        while value is None or value[0] != b"pmessage":
            assert time.monotonic() < deadline, "not subscribed again after the reconnect"
            _, value, _ = _read(pubsub, timeout + 2)
        assert value[3] == b"again"
