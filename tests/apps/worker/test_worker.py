"""The worker against a real redis-server with real ``celery worker`` processes."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from tests.apps.redis_server import free_port
from tests.apps.worker.envelopes import RECORD
from tests.apps.worker.helpers import CELERY, REPO, clean_env, wait_for

FAST = {"WORK_SECONDS_MIN": "0", "WORK_SECONDS_MAX": "0", "CELERY_VISIBILITY_TIMEOUT": "10"}


def env_for(server, **extra) -> dict[str, str]:
    return {**server.env, **FAST, **{k: str(v) for k, v in extra.items()}}


def user_keys(client) -> set[bytes]:
    return set(client.scan_iter("users:*", count=1000))


def test_queue_list_is_exactly_celery_queue(redis_server, send):
    """KEDA's listName must see every pending task: one list named CELERY_QUEUE, even
    for tasks sent with a priority (kombu would otherwise use '<queue>\\x06\\x16<pri>')."""
    env = env_for(redis_server, CELERY_QUEUE="jobs")
    for i in range(7):
        send(env, RECORD, priority=(i * 3) % 10)
    with redis_server.client() as c:
        assert c.llen("jobs") == 7
        lists = [k for k in c.scan_iter("jobs*") if c.type(k) == b"list"]
        assert lists == [b"jobs"]


def test_round_trip_hash_ttl_metrics_health_and_inspect(redis_any, send, workers):
    """On every Redis the stacks can give (plain in-cluster, Azure Cache for Redis 6.0,
    Azure Managed Redis): tasks done, results with their TTL, metrics, health, and
    ``celery inspect`` (its reply queue expires: kombu's binding script, 6.0 form)."""
    port = free_port()
    env = env_for(redis_any, WORKER_METRICS_PORT=port, CELERY_QUEUE="q1", RESULT_TTL_SECONDS=500)
    ids = [send(env, RECORD) for _ in range(20)]
    worker = workers(env, concurrency=2).wait_ready()
    with redis_any.client() as c:
        wait_for(lambda: len(user_keys(c)) == 20, 30, message="20 hashes")
        h = c.hgetall(f"users:{ids[0]}")
        assert h[b"name"] == b"Ada Lovelace" and h[b"email"] == b"ada@example.org"
        assert h[b"worker_id"].startswith(f"{worker.name}@localhost/".encode())
        assert abs(float(h[b"processed_at"]) - time.time()) < 60
        assert all(470 <= c.ttl(f"users:{i}") <= 500 for i in ids)  # HSET + EXPIRE, one MULTI
        assert c.llen("q1") == 0
        assert not c.exists("q1.inflight", "unacked", "q1.dead_letter")

    def succeeded() -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith("celery_tasks_succeeded_total "):
                return float(line.split()[1])
        raise AssertionError("celery_tasks_succeeded_total missing:\n" + body)

    assert wait_for(lambda: succeeded() == 20.0, 10, message="metric = 20")
    ok = subprocess.run([sys.executable, "-m", "apps.worker.healthcheck"], cwd=REPO,
                        env=clean_env(**worker.env), capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    ping = subprocess.run([CELERY, "-A", "apps.worker.celery_app", "inspect", "ping", "--timeout", "5",
                           "-d", f"{worker.name}@localhost"], cwd=REPO, env=clean_env(**worker.env),
                          capture_output=True, text=True, timeout=60)
    assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr
    with redis_any.client() as c:  # the reply queue's binding got its deadline (ZSCORE + ZADD)
        assert c.zscore("_kombu.binding_deadlines", "reply.celery.pidbox") is not None
    assert worker.alive()


def probe(worker, *args: str) -> subprocess.CompletedProcess:
    """``python -m apps.worker.healthcheck [--ready]`` with the worker's environment."""
    return subprocess.run([sys.executable, "-m", "apps.worker.healthcheck", *args], cwd=REPO,
                          env=clean_env(**worker.env), capture_output=True, text=True, timeout=30)


def metric_sum(port: int, name: str) -> float:
    """Sum of a Prometheus metric over all its label sets."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def test_refuses_to_start_when_visibility_timeout_not_above_longest_task(redis_server):
    def start(**extra) -> subprocess.CompletedProcess:
        env = clean_env(**env_for(redis_server, **extra))
        return subprocess.run([CELERY, "-A", "apps.worker.celery_app", "worker"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)

    proc = start(WORK_SECONDS_MAX=20, CELERY_VISIBILITY_TIMEOUT=15)
    assert proc.returncode == 2
    assert "refusing to start" in proc.stderr
    assert "CELERY_VISIBILITY_TIMEOUT (15s) must exceed the task hard time limit (25s" in proc.stderr
    bad_field = start(WORKER_CONCURRENCY="zero")
    assert bad_field.returncode == 2
    assert "WORKER_CONCURRENCY: Input should be a valid integer" in bad_field.stderr
    for out in (proc, bad_field):  # errors never echo the inputs (REDIS_PASSWORD among them)
        assert redis_server.password not in out.stderr + out.stdout


def test_sigterm_mid_task_finishes_it_and_leaves_the_rest_queued(redis_server, send, workers):
    env = env_for(redis_server, WORK_SECONDS_MIN=2, WORK_SECONDS_MAX=2)
    ids = [send(env, RECORD) for _ in range(3)]
    worker = workers(env).wait_ready()
    with redis_server.client() as c:
        wait_for(lambda: c.llen("celery") == 2 and c.hlen("unacked") == 1, 15, message="first task started")
        time.sleep(0.5)
        worker.terminate()
        assert worker.wait(timeout=20) == 0
        assert c.exists(f"users:{ids[0]}"), "the running task must complete before exit"
        # Nothing stranded in unacked / inflight: the other two are still queued.
        assert c.llen("celery") == 2 and not c.exists("unacked", "celery.inflight")
    workers(env).wait_ready()
    with redis_server.client() as c:
        wait_for(lambda: all(c.exists(f"users:{i}") for i in ids), 30, message="all three done")


def test_job_mode_exits_zero_when_idle_and_not_during_a_task(redis_any, send, workers):
    idle, work, port = 1.5, 3, free_port()
    env = env_for(redis_any, WORK_SECONDS_MIN=work, WORK_SECONDS_MAX=work, WORKER_IDLE_EXIT_SECONDS=idle,
                  WORKER_METRICS_PORT=port)
    task = send(env, RECORD)
    started = time.monotonic()
    worker = workers(env).wait_ready()
    # The task (3 s) outlives the idle timeout (1.5 s): the worker must not leave meanwhile.
    time.sleep(2.0)
    assert metric_sum(port, "celery_tasks_in_progress") == 1
    time.sleep(0.5)
    assert worker.alive(), worker.log()
    assert worker.wait(timeout=30) == 0, worker.log()
    elapsed = time.monotonic() - started
    with redis_any.client() as c:
        assert c.exists(f"users:{task}")
        assert c.llen("celery") == 0 and not c.exists("unacked")
    assert elapsed >= work + idle


def test_job_mode_empty_queue_exits_after_idle_timeout(redis_server, workers):
    worker = workers(env_for(redis_server, WORKER_IDLE_EXIT_SECONDS=1.5))
    started = time.monotonic()
    worker.wait_ready()
    assert worker.wait(timeout=30) == 0
    assert time.monotonic() - started >= 1.5


def test_tls_round_trip_verified(redis_tls, send, workers):
    env = env_for(redis_tls, CELERY_QUEUE="tlsq")
    with redis_tls.client() as c:
        c.flushall()
    task = send(env, RECORD)
    workers(env).wait_ready()
    with redis_tls.client() as c:
        wait_for(lambda: c.exists(f"users:{task}"), 30, message="TLS task done")


@pytest.mark.parametrize("ca", ["wrong", "system"])
def test_tls_worker_with_untrusted_ca_does_not_connect(redis_tls, tls_files, tmp_path, send, workers, ca):
    """REDIS_TLS=true verifies the certificate: a CA that did not sign it (or the system
    trust store) means no connection, not a silent unverified one."""
    from tests.apps.redis_server import make_tls_files

    env = env_for(redis_tls, CELERY_QUEUE="tlsbad")
    with redis_tls.client() as c:
        c.flushall()
    send(env, RECORD)
    if ca == "wrong":
        env["REDIS_CA_FILE"] = str(make_tls_files(tmp_path / "other-ca").ca)
    else:
        env.pop("REDIS_CA_FILE")
    worker = workers(env)
    wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in worker.log(), 20, message="a verification failure")
    time.sleep(1)
    with redis_tls.client() as c:
        assert c.llen("tlsbad") == 1, "a worker with an untrusted CA consumed a task"
        assert not list(c.scan_iter("users:*"))
    # It keeps retrying: live (a restart cannot fix a certificate), never ready, and it says why.
    assert worker.alive()
    ready = probe(worker, "--ready")
    assert ready.returncode == 1 and "not ready: waiting for Redis (connection)" in ready.stderr, ready
    assert probe(worker).returncode == 0
    assert worker.log().count("Redis unavailable (connection)") == 1  # once per interval, not per attempt
