"""The connection budget's per-pod figures (components/connections.py) are what real processes
hold on a real redis-server at their peak, counted with ``CLIENT LIST``: a change that makes
an app open more connections (or fewer) fails here, and the figure and docs/infra.md's table
must follow it.

- a worker pod, concurrency 1, 2 and 4 (and 2 on every Redis profile), through a burst that
  keeps every pool child busy and a message its main process dead-letters itself;
- the job-mode sweeper through several sweeps;
- the producer: ``--forever``, ``--standby``, and a ``--count`` burst (what ``kubectl exec``
  runs in a standby pod);
- redis_exporter through a series of scrapes.

The cache API's pool bound and its replica sidecar's link: tests/apps/cache_api/test_pool_bound.py.
Each test has a private server: the session's shared one may hold other tests' clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest

from components import connections
from tests.apps.client_count import ClientSampler, tcp_clients
from tests.apps.redis_profiles import PROFILE_NAMES
from tests.apps.worker.envelopes import real_envelope, variant
from tests.apps.worker.helpers import REPO, Worker, clean_env, wait_for
from tests.monitoring.processes import RedisExporterProcess
from tests.monitoring.test_redis_exporter import exporter_env
from tests.monitoring.tools import require_tool

QUEUE = "celery"
WORKER_ENV = {"WORK_SECONDS_MIN": "0.1", "WORK_SECONDS_MAX": "0.3", "CELERY_VISIBILITY_TIMEOUT": "20"}


def _producer_app(server):
    from apps.producer.producer import build_app
    from apps.producer.settings import ProducerSettings

    with mock.patch.dict(os.environ, clean_env(**server.env), clear=True):
        return build_app(ProducerSettings())


def _seed(server, tasks: int) -> None:
    """``tasks`` valid tasks and one envelope whose body is no Celery body (the worker's main
    process dead-letters it, with its own client), then no client of ours left."""
    from apps.producer.settings import TASK_NAME

    app = _producer_app(server)

    def send(env, *args, **options):
        return app.send_task(TASK_NAME, args=list(args), queue=env["CELERY_QUEUE"], **options).id

    bad = variant(real_envelope(server, send, {"CELERY_QUEUE": QUEUE}, QUEUE), body="not a celery body")
    with app.connection_for_write() as conn:
        producer = app.amqp.Producer(conn)
        for i in range(tasks):
            app.send_task(TASK_NAME, args=[{"name": f"user {i}", "email": f"u{i}@example.org", "address": "x"}],
                          queue=QUEUE, producer=producer)
    app.pool.force_close_all()
    app.close()
    with server.client() as c:
        c.lpush(QUEUE, json.dumps(bad))
    wait_for(lambda: not tcp_clients(server), 5, message="the seeding client gone")


@pytest.mark.slow
@pytest.mark.parametrize(("profile", "concurrency"), [("local", 1), ("local", 4)] + [(p, 2) for p in PROFILE_NAMES])
def test_a_worker_pod_holds_its_budgeted_connections(redis_factory, tmp_path, profile, concurrency):
    server = redis_factory(profile=profile)
    tasks = 12 * concurrency
    _seed(server, tasks)
    worker = Worker({**server.env, **WORKER_ENV}, tmp_path / "workers", concurrency=concurrency)
    try:
        with ClientSampler(server) as sampler:
            worker.start().wait_ready()

            def drained() -> bool:
                with server.client() as c:
                    return (c.llen(QUEUE) == 0 and len(c.keys("users:*")) == tasks
                            and c.llen(f"{QUEUE}.dead_letter") == 1)

            wait_for(drained, 60, interval=0.2, message="the burst done and the bad message dead-lettered")
            time.sleep(3)  # an unacked-restore sweep (every 2 s here) and the health checks
        assert worker.alive(), worker.log()
        with server.client() as c:
            (entry,) = [json.loads(e) for e in c.lrange(f"{QUEUE}.dead_letter", 0, -1)]
        assert entry["stage"] == "consumer"  # the main process's own dead-letter client
        expected = connections.worker_pod(concurrency)
        assert sampler.peak == expected, (
            f"a worker pod at concurrency {concurrency} held {sampler.peak} connections, the budget says "
            f"{expected} ({connections.WORKER_MAIN_PROCESS} + {connections.WORKER_PER_CHILD} x {concurrency}); "
            f"by last command: {dict(sampler.at_peak)}")
    finally:
        worker.kill()
        worker.close()


def _run(server, tmp_path: Path, argv: list[str], seconds: float, **env: str) -> ClientSampler:
    """Run ``python argv`` against ``server`` for ``seconds``, sampling its connections; then SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, *argv], cwd=REPO,
        env=clean_env(**server.env, **WORKER_ENV, PRODUCER_METRICS_PORT="0",
                      PRODUCER_HEARTBEAT_FILE=str(tmp_path / "producer-hb.json"),
                      WORKER_HEARTBEAT_FILE=str(tmp_path / "worker-hb.json"), **env),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        with ClientSampler(server) as sampler:
            time.sleep(seconds)
            assert proc.poll() is None, proc.stderr.read().decode()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    return sampler


def test_the_sweeper_holds_its_budgeted_connections(redis_factory, tmp_path):
    sampler = _run(redis_factory(), tmp_path, ["-m", "apps.worker.sweeper"], 6)  # three sweeps
    assert sampler.peak == connections.SWEEPER_POD, dict(sampler.at_peak)


@pytest.mark.parametrize(("argv", "expected"), [
    (["--forever", "--rate", "50"], connections.PRODUCER_POD),
    (["--standby"], 0),
])
def test_the_producers_long_running_modes(redis_factory, tmp_path, argv, expected):
    sampler = _run(redis_factory(), tmp_path, ["-m", "apps.producer", *argv], 4)
    assert sampler.peak == expected, dict(sampler.at_peak)


def test_a_burst_in_a_standby_pod_is_the_producer_pods_budget(redis_factory, tmp_path):
    """``kubectl exec deploy/producer -- python -m apps.producer --count N`` (standby holds none)."""
    redis_server = redis_factory()
    with ClientSampler(redis_server) as sampler:
        burst = subprocess.run([sys.executable, "-m", "apps.producer", "--count", "300", "--rate", "200"],
                               cwd=REPO, env=clean_env(**redis_server.env), capture_output=True, timeout=60)
    assert burst.returncode == 0, burst.stderr
    assert sampler.peak == connections.PRODUCER_POD, dict(sampler.at_peak)


def test_redis_exporter_holds_one_connection_per_scrape(redis_factory, tmp_path):
    redis_server = redis_factory()
    exporter = RedisExporterProcess(require_tool("redis_exporter"), exporter_env("local", redis_server),
                                    tmp_path).start()
    try:
        with ClientSampler(redis_server, interval=0.005) as sampler:
            for _ in range(15):
                assert exporter.samples()["redis_up"] == 1
    finally:
        exporter.stop()
    assert sampler.peak == connections.EXPORTER, dict(sampler.at_peak)
