"""No task lost: workers SIGKILLed at random, abandoned tasks back within the visibility
timeout, and the window between pop and unacked bookkeeping covered."""

from __future__ import annotations

import random
import re
import threading
import time

import pytest

from tests.apps.worker.helpers import succeeded, wait_for
from tests.apps.worker.test_worker import RECORD, env_for, user_keys

pytestmark = pytest.mark.slow

_RECEIVED = re.compile(r"Task users\.process\[([0-9a-f-]{36})\] received")


def in_flight(log: str) -> set[str]:
    """Tasks a killed worker had received but not finished."""
    return set(_RECEIVED.findall(log)) - set(succeeded(log))


def test_thousand_tasks_with_workers_killed_at_random(redis_server, send, workers):
    n = 1000
    vt = 8  # > hard time limit (ceil(0.1) + 5 = 6 s): a dead worker's tasks return in ~vt + 1 s
    env = env_for(redis_server, WORK_SECONDS_MIN=0, WORK_SECONDS_MAX=0.1, CELERY_VISIBILITY_TIMEOUT=vt)
    rng = random.Random(4)
    ids: list[str] = []

    def produce() -> None:
        for _ in range(n):
            ids.append(send(env, RECORD))
            if len(ids) % 50 == 0:
                time.sleep(1.0)  # spread the load over the whole chaos window (20 batches, ~20 s)

    pool = [workers(env, concurrency=2) for _ in range(3)]
    producer = threading.Thread(target=produce)
    producer.start()
    kills = kills_mid_task = 0
    interrupted: set[str] = set()
    with redis_server.client() as c:
        chaos_until = time.monotonic() + 20
        while time.monotonic() < chaos_until:
            time.sleep(rng.uniform(0.7, 2.0))
            # A worker with tasks in hand when there is one (on a loaded machine a fresh worker
            # may still be starting when its turn comes): the point is killing mid-task.
            busy = [i for i, w in enumerate(pool) if in_flight(w.log())]
            victim = rng.choice(busy) if busy else rng.randrange(len(pool))
            pool[victim].kill()
            interrupted |= in_flight(pool[victim].log())
            kills_mid_task += bool(in_flight(pool[victim].log()))  # SIGKILL the whole process group: no warm shutdown
            kills += 1
            pool[victim] = workers(env, concurrency=2)
        producer.join(timeout=60)
        assert len(ids) == n
        done = lambda: len(user_keys(c)) >= n  # noqa: E731
        wait_for(done, 90, interval=0.5, message=f"{n} hashes after {kills} kills")
        missing = [i for i in ids if not c.exists(f"users:{i}")]
        assert not missing, f"{len(missing)} tasks lost"
        assert interrupted <= set(ids)
        wait_for(lambda: not c.exists("unacked", "celery.inflight") and c.llen("celery") == 0, 30,
                 message="nothing left unacked or inflight")
        assert c.llen("celery.dead_letter") == 0
    assert kills >= 8 and kills_mid_task >= 3, (kills, kills_mid_task)


def test_dead_workers_task_returns_within_visibility_timeout(redis_any, send, workers):
    """kombu's default sweep takes ~100 s; ours brings the task back within ~1.1 x timeout,
    on every Redis profile (the sweep's ZREVRANGEBYSCORE is a Redis 6.0 form)."""
    vt, work = 8, 2  # hard limit = 2 + 5 = 7 s
    env = env_for(redis_any, WORK_SECONDS_MIN=work, WORK_SECONDS_MAX=work, CELERY_VISIBILITY_TIMEOUT=vt)
    first = workers(env).wait_ready()
    task = send(env, RECORD)
    with redis_any.client() as c:
        wait_for(lambda: c.hlen("unacked") == 1, 15, interval=0.05, message="task running on the first worker")
        first.kill()
        killed_at = time.monotonic()
        assert not c.exists(f"users:{task}"), "killed too late: the task had finished"
        workers(env).wait_ready()
        wait_for(lambda: c.exists(f"users:{task}"), vt + 20, interval=0.2, message="redelivery")
        elapsed = time.monotonic() - killed_at
    # visibility timeout + one sweep period (1 s) + the 2 s task + startup slack
    assert vt - 1 <= elapsed <= vt + 1 + work + 5, elapsed


def test_message_popped_by_a_worker_that_died_is_restored(redis_any, send, workers):
    """A worker killed between BRPOPLPUSH and recording the message as unacked leaves it in
    '<queue>.inflight': the sweep must put it back (stock kombu BRPOP would lose it)."""
    vt = 6
    env = env_for(redis_any, CELERY_VISIBILITY_TIMEOUT=vt)
    task = send(env, RECORD)
    with redis_any.client() as c:
        c.rpoplpush("celery", "celery.inflight")  # what the dead worker did (BRPOPLPUSH)
        assert c.llen("celery") == 0 and c.llen("celery.inflight") == 1
        started = time.monotonic()
        workers(env).wait_ready()
        wait_for(lambda: c.exists(f"users:{task}"), vt + 15, interval=0.2, message="inflight restore")
        assert time.monotonic() - started >= vt - 1  # not before it can be presumed dead
        assert c.llen("celery.inflight") == 0 and c.llen("celery") == 0


def test_pool_process_killed_mid_task_is_retried(redis_server, send, workers):
    """An OOM-killed pool child (the main process lives on): the task is re-sent as a
    retry and completes; the worker keeps serving."""
    import os
    import signal

    env = env_for(redis_server, WORK_SECONDS_MIN=2, WORK_SECONDS_MAX=2)
    worker = workers(env).wait_ready()
    task = send(env, RECORD)
    with redis_server.client() as c:
        wait_for(lambda: c.hlen("unacked") == 1, 15, message="task running")
        time.sleep(0.3)
        children = [int(p) for p in open(f"/proc/{worker.pid}/task/{worker.pid}/children").read().split()]
        assert len(children) == 1
        os.kill(children[0], signal.SIGKILL)
        wait_for(lambda: c.exists(f"users:{task}"), 30, message="retried task done")
        assert worker.alive()
        assert c.llen("celery.dead_letter") == 0
    assert "retry: Retry in 1s: WorkerLostError" in worker.log()


def test_worker_reconnects_after_redis_restart(redis_factory, send, workers):
    """Redis down: the worker stays live (its heartbeat goes on, saying it waits for Redis)
    and turns not ready; Redis back: ready again and consuming. A worker waiting for Redis
    is not one to restart (docs/worker.md, "Liveness and readiness")."""
    from tests.apps.worker.test_worker import probe

    server = redis_factory()
    env = env_for(server, WORKER_HEARTBEAT_INTERVAL=0.5, WORKER_HEARTBEAT_MAX_AGE=2)
    worker = workers(env).wait_ready()

    first = send(env, RECORD)
    with server.client() as c:
        wait_for(lambda: c.exists(f"users:{first}"), 20, message="first task")
    server.stop()
    wait_for(lambda: probe(worker, "--ready").returncode == 1, 15, interval=0.5, message="not ready while Redis is down")
    time.sleep(3)  # longer than WORKER_HEARTBEAT_MAX_AGE: the waiting worker keeps its heartbeat
    assert probe(worker).returncode == 0, "a worker waiting for Redis must stay live"
    assert "waiting for Redis (connection)" in probe(worker, "--ready").stderr
    server.start()  # no persistence: an empty Redis on the same port
    wait_for(lambda: probe(worker, "--ready").returncode == 0, 30, interval=0.5, message="ready again")
    second = send(env, RECORD)
    with server.client() as c:
        wait_for(lambda: c.exists(f"users:{second}"), 60, interval=0.5, message="task after restart")
    assert worker.alive()
