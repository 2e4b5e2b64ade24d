"""Every byte the worker, the producer and the sweeper send Redis, connection handshakes
included, is a command Redis 6.0 has (tests/apps/wire.py). The MONITOR audit cannot see a
command the 7.0 test server refuses (redis-py 8's ``CLIENT SETINFO``, Redis 7.2); the relay can.
"""

from __future__ import annotations

import subprocess
import sys

from tests.apps.wire import names, problems, relay
from tests.apps.worker.helpers import CELERY, REPO, clean_env, wait_for
from tests.apps.worker.test_sweeper import SweeperProcess
from tests.apps.worker.test_worker import env_for


def test_worker_producer_and_sweeper_send_only_redis_6_0_commands(redis_server, workers, tmp_path):
    with relay(redis_server.port) as wire:
        env = {**env_for(redis_server), "REDIS_PORT": str(wire.port), "PRODUCER_METRICS_PORT": "0"}
        worker = workers(env).wait_ready()
        burst = subprocess.run([sys.executable, "-m", "apps.producer", "--count", "5", "--rate", "0",
                                "--wait-results", "30"], cwd=REPO, env=clean_env(**env),
                               capture_output=True, text=True, timeout=60)
        assert burst.returncode == 0, burst.stdout + burst.stderr
        ping = subprocess.run([CELERY, "-A", "apps.worker.celery_app", "inspect", "ping", "--timeout", "5",
                               "-d", f"{worker.name}@localhost"], cwd=REPO, env=clean_env(**worker.env),
                              capture_output=True, text=True, timeout=60)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        sweeper = SweeperProcess({**env, "CELERY_VISIBILITY_TIMEOUT": "10"}, tmp_path / "sweeper")
        try:
            wait_for(lambda: sweeper.beat(), 30, message="a sweep")
        finally:
            sweeper.close()
        worker.terminate()
        worker.wait(timeout=30)
        commands = wire.commands()
    sent = names(commands)
    # The pop, the unacked bookkeeping, the result write, the publish and the sweeps went through.
    assert {"BRPOPLPUSH", "LPUSH", "HSET", "EXPIRE", "MULTI", "EXEC", "ZREVRANGEBYSCORE"} <= sent, sent
    assert not problems(commands), sent
