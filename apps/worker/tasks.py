"""Thin Celery tasks over the plain functions in ``users.py``."""

from __future__ import annotations

import os
import time

import redis
from celery import Celery, Task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from kombu.transport.redis import Channel as KombuRedisChannel

from apps.common.redis_errors import UNAVAILABLE, reason
from apps.worker.settings import TASK_NAME, WorkerSettings
from apps.worker.users import BadPayload, parse_record, simulate_work, store_user, work_time

#: Retries of a task whose pool process died, before it is dead-lettered.
MAX_RETRIES = 5

#: Seconds of its soft time limit a task keeps in hand when it gives up waiting for Redis
#: (the soft limit would otherwise interrupt the wait and count as a failure).
WAIT_MARGIN_SECONDS = 0.5

_clients: dict[int, redis.Redis] = {}

#: kombu's unacked records (the transport's defaults, which the worker keeps).
UNACKED_KEY = KombuRedisChannel.unacked_key
UNACKED_INDEX_KEY = KombuRedisChannel.unacked_index_key


class RedisUnavailable(Reject):
    """Redis refused (or could not take) a write the task must make (its result, or a bad
    payload's dead letter) for the whole time the task had: the message is requeued
    (``Reject(requeue=True)``), never dead-lettered for it, and the task runs again once
    Redis accepts writes (docs/worker.md, "At Redis's limits")."""

    def __init__(self, label: str, detail: str = ""):
        super().__init__(f"Redis unavailable ({label}), write not done: {detail}", requeue=True)
        self.label = label
        self.detail = detail

    def __reduce__(self):  # pool process -> main process
        return (type(self), (self.label, self.detail))


def redis_client(settings: WorkerSettings) -> redis.Redis:
    """One client per process (pool children are forked: never share sockets)."""
    pid = os.getpid()
    if pid not in _clients:
        _clients.clear()
        kwargs = settings.redis_client_kwargs()
        kwargs.update(socket_timeout=3, socket_connect_timeout=3)
        _clients[pid] = redis.Redis(**kwargs)
    return _clients[pid]


def store_waiting(write, deadline: float, *, clock=time.monotonic, sleep=time.sleep):
    """``write()``, retried while Redis is full, read-only, loading or unreachable, with a
    bounded backoff (0.1 s doubling to 1 s), until ``deadline`` (``clock()`` time); then
    :class:`RedisUnavailable`. Any other error is the task's own."""
    delay = 0.1
    while True:
        try:
            return write()
        except UNAVAILABLE as exc:
            if clock() + delay >= deadline:
                raise RedisUnavailable(reason(exc) or "connection", f"{type(exc).__name__}: {exc}") from None
        except SoftTimeLimitExceeded:
            raise RedisUnavailable("timeout", "the soft time limit ended a write that Redis did not answer") from None
        sleep(delay)
        delay = min(delay * 2, 1.0)


def ack_with(delivery_tag: str | None):
    """The message's ack (kombu's: its unacked record, ``HDEL`` + ``ZREM``) as commands for
    the task's own transaction: the result and the ack land together or not at all, and
    the main process's ack is then bookkeeping only (apps/worker/task_requests.py)."""
    if not delivery_tag:
        return None

    def ack(pipe) -> None:
        pipe.hdel(UNACKED_KEY, delivery_tag)
        pipe.zrem(UNACKED_INDEX_KEY, delivery_tag)

    return ack


def register(app: Celery, settings: WorkerSettings, ack_in_write: bool = True) -> Task:
    """Register the task on ``app`` (the worker's app, or, ``ack_in_write=False``, the
    benchmark's plain-Celery baseline, which acks as Celery does)."""

    # retry_on_worker_lost: a pool process that dies mid-task (OOM kill, segfault) gets
    # its task re-sent as a retry, counted against max_retries, so a message that kills
    # every process it lands on is dead-lettered instead of requeued forever.
    @app.task(name=TASK_NAME, bind=True, max_retries=MAX_RETRIES,
              retry_on_worker_lost=True, default_retry_delay=1)
    def process_user(self: Task, *args, **kwargs) -> str:
        # Writes wait for Redis up to just before the soft time limit, never past it.
        deadline = time.monotonic() + settings.task_soft_time_limit - WAIT_MARGIN_SECONDS
        client = redis_client(settings)
        try:
            record = parse_record(args, kwargs)
        except BadPayload as exc:
            problem = str(exc)
            store_waiting(lambda: settings.dead_letters.push(
                client, problem, {"args": args, "kwargs": kwargs}, task_id=self.request.id,
                task=self.name, stage="task"), deadline)
            raise Reject(problem, requeue=False) from None
        simulate_work(work_time(settings.work_seconds_min, settings.work_seconds_max))
        worker_id = f"{self.request.hostname}/{os.getpid()}"
        ack = ack_with(delivery_tag(self.request)) if ack_in_write else None
        return store_waiting(
            lambda: store_user(client, self.request.id, record, worker_id, settings.result_ttl_seconds,
                               also=ack),
            deadline)

    process_user.ack_in_write = ack_in_write
    return process_user


def delivery_tag(request) -> str | None:
    """The message's kombu delivery tag, as the pool process sees it (Celery passes the
    message's properties with the request)."""
    properties = getattr(request, "properties", None) or {}
    tag = properties.get("delivery_tag")
    return tag if isinstance(tag, str) and tag else None
