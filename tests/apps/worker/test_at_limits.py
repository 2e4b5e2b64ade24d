"""The fleet at Redis's limits, on every Redis profile: it waits, alive, and recovers by
itself, losing nothing (docs/worker.md, "At Redis's limits").

- a burst larger than Redis's memory: the producer holds at its threshold instead of
  failing, the workers drain, every task is done, and Redis never refused a write;
- memory filled by other keys: workers wait (live, not ready, counted, one log line), and
  once the keys are gone every queued task is done, none dead-lettered; results refused
  mid-task are redone, not dead-lettered;
- workers started at the client limit stay alive and work once clients free up;
- a failover: a read-only replica, then its restart as the primary, loading its data back.

Every one of these failed before this work (the worker died at its first pop, at the
client limit, or lost a task whose result write was refused; the producer exited).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from apps.common.redis_wait import JITTER, MAX_DELAY
from tests.apps.limits import (
    LOADS_AT_RESTART,
    PRIMARY,
    answering,
    full_at,
    hold_clients,
    load_lasting,
    populate,
    replica_of,
)
from tests.apps.redis_fill import free, overfill
from tests.apps.redis_profiles import PROFILE_NAMES
from tests.apps.redis_server import free_port
from tests.apps.worker.envelopes import RECORD
from tests.apps.worker.helpers import REPO, clean_env, wait_for
from tests.apps.worker.test_worker import env_for, metric_sum, probe, user_keys

pytestmark = [pytest.mark.parametrize("profile", PROFILE_NAMES), pytest.mark.slow]

#: Lines a worker may log about one episode of waiting (its own, and Celery's, throttled).
EPISODE_LINES = re.compile(r"Redis unavailable|still Redis unavailable|Connection to broker lost")


def nothing_left(c, queue: str = "celery") -> bool:
    return c.llen(queue) == 0 and not c.exists("unacked", f"{queue}.inflight")


def start_producer(env: dict, tmp_path, *args: str) -> subprocess.Popen:
    log = open(tmp_path / "producer.log", "w")
    return subprocess.Popen([sys.executable, "-m", "apps.producer", *args], cwd=REPO, env=clean_env(**env),
                            stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def stop_producer(proc: subprocess.Popen, tmp_path) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, (tmp_path / "producer.log").read_text()


def sent_by_producer(heartbeat) -> int:
    try:
        return int(json.loads(heartbeat.read_text())["sent"])
    except (OSError, ValueError, KeyError):
        return 0


def test_a_burst_larger_than_memory_is_held_back_then_drained(profile, redis_factory, workers, tmp_path):
    server = redis_factory(profile=profile, settings=full_at("4mb"))
    # A tiny Redis: the ~13 kB each client connection takes (docs/capacity.md) is a large share
    # of it, so the producer keeps 30 % for the workers, not the default 20 %.
    env = env_for(server, PUBLISH_MAX_MEMORY_PERCENT=70)
    # More than the room holds: 2,200 queued tasks are 1.2 MB (docs/capacity.md: ~570 B each)
    # and their results ~0.9 MB (~410 B each), while the threshold leaves ~1.0 MB once the
    # fleet is connected. Before the fleet, 0.9 MB of other data (the ballast, deleted when the
    # workers start) stands for the room the queue must not take, so the producer holds well
    # before the end of the burst; the results still fit once every task is done (a bigger
    # burst would hold the producer forever: results are not the queue's to give back).
    n = 2200
    with server.client() as c:
        c.set("ballast", b"x" * 900_000)
    burst = start_producer(env, tmp_path, "--count", str(n), "--rate", "0", "--max-wait", "60",
                           "--wait-results", "120")
    with server.client() as c:
        wait_for(lambda: "holding: Redis memory at the publish threshold" in (tmp_path / "producer.log").read_text()
                 or burst.poll() is not None, 60, interval=0.2, message="the producer holds")
        assert burst.poll() is None, (tmp_path / "producer.log").read_text()
        held_at = c.llen("celery")
        assert 500 < held_at < n - 500, held_at  # held well before the end of the burst
        time.sleep(1.5)
        assert c.llen("celery") == held_at  # holding, not failing, not publishing
        c.delete("ballast")
        for _ in range(2):
            workers(env, concurrency=2)
        code, log = stop_producer_when_done(burst, tmp_path, timeout=150)
        assert code == 0, log
        assert f"all {n} results present" in log
        assert len(user_keys(c)) == n and nothing_left(c) and c.llen("celery.dead_letter") == 0
        # Redis never refused a write: the queue never took the memory the workers need.
        assert "errorstat_OOM" not in c.info("errorstats"), c.info("errorstats")


def stop_producer_when_done(proc, tmp_path, timeout: float) -> tuple[int, str]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    return stop_producer(proc, tmp_path)


def test_memory_full_of_other_keys_workers_wait_alive_then_do_every_task(profile, redis_factory, send, workers):
    server = redis_factory(profile=profile, settings=full_at("4mb"))
    port = free_port()
    env = env_for(server, WORKER_HEARTBEAT_INTERVAL=0.5, WORKER_HEARTBEAT_MAX_AGE=3)
    ids = [send(env, RECORD) for _ in range(30)]
    with server.client() as c:
        overfill(server)
        pool = [workers({**env, "WORKER_METRICS_PORT": str(port)}, concurrency=2), workers(env, concurrency=2)]
        wait_for(lambda: all(w.beat() for w in pool), 30, message="heartbeats while waiting")
        time.sleep(4)
        assert all(w.alive() for w in pool), pool[0].log()
        assert not user_keys(c) and c.llen("celery") == 30 and c.llen("celery.dead_letter") == 0
        for w in pool:
            assert probe(w).returncode == 0  # live: restarting it cannot help
            ready = probe(w, "--ready")
            assert ready.returncode == 1 and "waiting for Redis (oom)" in ready.stderr, ready.stderr
            assert len(EPISODE_LINES.findall(w.log())) <= 3, w.log()  # not a line per attempt
        assert metric_sum(port, 'celery_worker_redis_unavailable_total{reason="oom"}') >= 2
        assert metric_sum(port, "celery_worker_waiting_for_redis") == 1
        free(server)
        wait_for(lambda: len(user_keys(c)) == 30, 40, interval=0.5, message="every task done once memory is free")
        assert {k.decode() for k in user_keys(c)} == {f"users:{i}" for i in ids}
        wait_for(lambda: nothing_left(c), 15, message="nothing left queued, inflight or unacked")
        assert c.llen("celery.dead_letter") == 0
        wait_for(lambda: all(probe(w, "--ready").returncode == 0 for w in pool), 15, interval=0.5,
                 message="ready again")
        assert metric_sum(port, "celery_worker_waiting_for_redis") == 0


def test_results_refused_mid_task_are_redone_not_dead_lettered(profile, redis_factory, send, workers):
    vt = 10
    server = redis_factory(profile=profile, settings=full_at("4mb"))
    env = env_for(server, WORK_SECONDS_MIN=2, WORK_SECONDS_MAX=2, CELERY_VISIBILITY_TIMEOUT=vt)
    ids = [send(env, RECORD) for _ in range(4)]
    worker = workers(env, concurrency=2).wait_ready()
    with server.client() as c:
        wait_for(lambda: c.hlen("unacked") == 2, 15, interval=0.05, message="two tasks running")
        overfill(server)  # while they work: their result writes will be refused
        time.sleep(5)  # past their wait budget (soft limit 4 s - 0.5 s): requeued, kept in unacked
        assert worker.alive(), worker.log()
        assert not user_keys(c) and c.llen("celery.dead_letter") == 0
        assert c.hlen("unacked") == 2  # Redis refused the requeue too: still there, not lost
        assert "Redis unavailable (oom), write not done" in worker.log()
        free(server)
        wait_for(lambda: len(user_keys(c)) == 4, vt + 30, interval=0.5, message="all four done")
        assert {k.decode() for k in user_keys(c)} == {f"users:{i}" for i in ids}
        wait_for(lambda: nothing_left(c), 15, message="nothing left")
        assert c.llen("celery.dead_letter") == 0
    assert worker.alive()


def test_workers_started_at_the_client_limit_wait_then_work(profile, redis_factory, send, workers):
    server = redis_factory(profile=profile, settings={"maxclients": "40"})
    env = env_for(server, WORKER_HEARTBEAT_INTERVAL=0.5, WORKER_HEARTBEAT_MAX_AGE=3)
    held = hold_clients(server, leave=2)  # room for a couple of connections: a worker needs ~10
    try:
        pool = [workers(env, concurrency=2) for _ in range(2)]
        try:
            wait_for(lambda: all(w.beat() for w in pool), 30, message="heartbeats while waiting")
        except AssertionError:
            raise AssertionError("\n\n".join(w.log()[-3000:] for w in pool)) from None
        time.sleep(6)
        for w in pool:
            assert w.alive(), w.log()
            assert probe(w).returncode == 0
            assert len(EPISODE_LINES.findall(w.log())) <= 4, w.log()  # a few lines, not one per attempt
        # Over TLS (the Azure profiles) the server writes its "max number of clients reached"
        # before the TLS handshake and closes: the client sees only an SSL EOF, a "connection"
        # failure (docs/redis-targets.md). In plain TCP it reads the reply.
        reason = "connection" if server.tls else "max_clients"
        readiness = [probe(w, "--ready") for w in pool]
        assert all(r.returncode == 1 and f"waiting for Redis ({reason})" in r.stderr for r in readiness), \
            [r.stderr for r in readiness]
    finally:
        for r in held:
            r.close()
    for w in pool:
        w.wait_ready(timeout=40)
    ids = [send(env, RECORD) for _ in range(20)]
    with server.client() as c:
        wait_for(lambda: all(c.exists(f"users:{i}") for i in ids), 40, interval=0.5, message="tasks done")
        assert c.llen("celery.dead_letter") == 0
    assert all(w.alive() for w in pool)


#: Keys the promoted replica loads back at its restart (a few thousand: the load's length is set by delay).
FAILOVER_KEYS = 5_000


def test_failover_readonly_replica_then_restart_loading(profile, redis_factory, send, workers, tmp_path):
    """The clients' Redis is a replica (writes refused: READONLY); then it restarts as the
    primary (connections reset) and loads its data back (LOADING). Workers and the
    long-running producer wait through all of it; every task is done."""
    primary = redis_factory(settings=PRIMARY)
    populate(primary, FAILOVER_KEYS)  # what the promoted server loads back, slowly
    # The initial sync loads at full speed; the restart's load (below) is the slow one.
    server = redis_factory(profile=profile, settings={**replica_of(primary), **LOADS_AT_RESTART})
    env = env_for(server, WORKER_HEARTBEAT_INTERVAL=0.5, WORKER_HEARTBEAT_MAX_AGE=3)
    ids = [send(env_for(primary), RECORD) for _ in range(20)]
    with server.client() as c:
        wait_for(answering(lambda: c.llen("celery") == 20 and c.dbsize() > FAILOVER_KEYS), 60,
                 message="replicated (LOADING while the replica loads the primary's data)")
    port = free_port()
    pool = [workers({**env, "WORKER_METRICS_PORT": str(port)}, concurrency=2), workers(env, concurrency=2)]
    producer = start_producer({**env, "PRODUCER_HEARTBEAT_FILE": str(tmp_path / "p.json"),
                               "PRODUCER_METRICS_PORT": "0"}, tmp_path, "--forever", "--rate", "20")
    try:
        wait_for(lambda: all("(readonly)" in w.log() for w in pool), 30, interval=0.5, message="READONLY seen")
        time.sleep(2)
        assert producer.poll() is None and all(w.alive() for w in pool)
        assert "Redis unavailable (readonly)" in (tmp_path / "producer.log").read_text()
        # Failover: the replica becomes the primary, restarting and loading its data back.
        server.stop()
        primary.stop()
        for key in replica_of(primary):
            server.settings.pop(key)
        # Every worker tries again during the outage: a worker that waits out its longest
        # backoff pause (MAX_DELAY + its jitter) from the moment of the stop still finds the
        # server loading. A shorter load let one pause past it, seeing no outage to count.
        server.settings.update(load_lasting(MAX_DELAY * (1 + JITTER) + 2, FAILOVER_KEYS))
        server.start(loaded=False)
        with server.client() as c:
            wait_for(answering(lambda: all(c.exists(f"users:{i}") for i in ids)), 90, interval=0.5,
                     message="the queued tasks done after the failover")
            # Counted, by reason (the log says it once per 30 s: one line for this whole failover).
            unavailable = 'celery_worker_redis_unavailable_total{{reason="{}"}}'.format
            assert metric_sum(port, unavailable("readonly")) >= 1
            assert metric_sum(port, unavailable("loading")) + metric_sum(port, unavailable("connection")) >= 1, \
                pool[0].log()[-4000:]
            # The producer publishes again (its backoff may be at its 5 s ceiling by now).
            wait_for(lambda: sent_by_producer(tmp_path / "p.json") > 0, 30, interval=0.5,
                     message="the producer publishing after the failover")
            code, log = stop_producer(producer, tmp_path)
            assert code == 0, log
            sent = int(re.search(r"sent (\d+) tasks to queue", log).group(1))
            assert sent > 0
            wait_for(lambda: len(user_keys(c)) == 20 + sent, 40, interval=0.5, message="the producer's tasks done")
            wait_for(lambda: nothing_left(c), 15, message="nothing left")
            assert c.llen("celery.dead_letter") == 0
        assert all(w.alive() for w in pool)
    finally:
        stop_producer(producer, tmp_path)
