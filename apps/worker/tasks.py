"""Thin Celery tasks over the plain functions in ``users.py``."""

from __future__ import annotations

import os
import random

import redis
from celery import Celery, Task
from celery.exceptions import Reject

from apps.worker.settings import TASK_NAME, WorkerSettings
from apps.worker.users import BadPayload, parse_record, simulate_work, store_user, work_time

#: Transient Redis errors are retried (with backoff) instead of dead-lettered.
RETRY_ON = (redis.ConnectionError, redis.TimeoutError)

#: Retries (transient Redis errors, lost pool processes) before a task is dead-lettered.
#: Retry delays stay far below the visibility timeout (a retry waits in the worker).
MAX_RETRIES = 5

_clients: dict[int, redis.Redis] = {}


def redis_client(settings: WorkerSettings) -> redis.Redis:
    """One client per process (pool children are forked: never share sockets)."""
    pid = os.getpid()
    if pid not in _clients:
        _clients.clear()
        kwargs = settings.redis_client_kwargs()
        kwargs.update(socket_timeout=3, socket_connect_timeout=3)
        _clients[pid] = redis.Redis(**kwargs)
    return _clients[pid]


def register(app: Celery, settings: WorkerSettings) -> Task:
    """Register the task on ``app`` (the worker's app, or the benchmark's baseline)."""

    # retry_on_worker_lost: a pool process that dies mid-task (OOM kill, segfault) gets
    # its task re-sent as a retry, counted against max_retries, so a message that kills
    # every process it lands on is dead-lettered instead of requeued forever.
    @app.task(name=TASK_NAME, bind=True, autoretry_for=RETRY_ON, max_retries=MAX_RETRIES,
              retry_backoff=1, retry_backoff_max=8, retry_jitter=True,
              retry_on_worker_lost=True, default_retry_delay=1)
    def process_user(self: Task, *args, **kwargs) -> str:
        client = redis_client(settings)
        try:
            record = parse_record(args, kwargs)
        except BadPayload as exc:
            settings.dead_letters.push(client, str(exc), {"args": args, "kwargs": kwargs},
                                       task_id=self.request.id, task=self.name, stage="task")
            raise Reject(str(exc), requeue=False) from None
        simulate_work(work_time(settings.work_seconds_min, settings.work_seconds_max, random))
        worker_id = f"{self.request.hostname}/{os.getpid()}"
        return store_user(client, self.request.id, record, worker_id, settings.result_ttl_seconds)

    return process_user
