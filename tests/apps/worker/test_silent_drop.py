"""Connections that vanish silently: the fleet finds them in seconds.

Two real workers reach Redis through the tests' own proxy (tests/apps/tcp_proxy.py). At
once, every connection they hold goes silent (no answer, no FIN, no RST: a lost NAT entry,
a load balancer dropping idle flows), while a new connection works. Tasks keep arriving.

Before: both workers took no task for ~150 s, their heartbeat went 78 s stale (the kubelet
restarts them), because the main loop waited out 30 s socket timeouts in turn (the sweep's
lock, Celery's heartbeat event, kombu's checks). Bound now: the heartbeat never older than
the liveness limit (WORKER_HEARTBEAT_MAX_AGE, 30 s), new tasks taken within 60 s, nothing
lost, nothing run twice.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.apps.tcp_proxy import TcpProxy
from tests.apps.worker.envelopes import RECORD
from tests.apps.worker.helpers import succeeded, wait_for
from tests.apps.worker.test_worker import env_for, user_keys

pytestmark = pytest.mark.slow

HEARTBEAT_MAX_AGE_S = 30.0  # WORKER_HEARTBEAT_MAX_AGE's default: past it, liveness fails
RESUME_WITHIN_S = 60.0


def test_silently_dropped_connections_stall_nothing(redis_server, send, workers):
    proxy = TcpProxy(redis_server.port).start()
    try:
        worker_env = env_for(redis_server, REDIS_PORT=proxy.port, CELERY_VISIBILITY_TIMEOUT=30)
        direct_env = env_for(redis_server)  # the producer reaches Redis directly
        pool = [workers(worker_env).wait_ready() for _ in range(2)]
        with redis_server.client() as c:
            first = [send(direct_env, RECORD) for _ in range(6)]
            wait_for(lambda: len(user_keys(c)) >= len(first), 30, message="the first tasks")
            time.sleep(3)  # the pooled connections sit idle, as in the field

            silenced = proxy.silence_existing()
            assert silenced >= 4, f"only {silenced} connections went through the proxy"
            t0 = time.monotonic()
            worst_age = [0.0]
            stop = threading.Event()

            def watch() -> None:
                while not stop.is_set():
                    for w in pool:
                        beat = w.beat()
                        if beat is not None:
                            worst_age[0] = max(worst_age[0], time.time() - float(beat["ts"]))
                    time.sleep(0.5)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            time.sleep(1)
            later = [send(direct_env, RECORD) for _ in range(20)]
            try:
                wait_for(lambda: len(user_keys(c)) >= len(first) + 1, RESUME_WITHIN_S + 40, interval=0.2,
                         message="the first task after the silence")
                resumed = time.monotonic() - t0
                wait_for(lambda: len(user_keys(c)) >= len(first) + len(later), 60, interval=0.2,
                         message="every task after the silence")
            finally:
                stop.set()
                watcher.join()
        print(f"silent drop: first task after {resumed:.1f} s, all {len(later)} after "
              f"{time.monotonic() - t0:.1f} s, oldest heartbeat {worst_age[0]:.1f} s")
        logs = "".join(w.log() for w in pool)
        done = succeeded(logs)
        assert all(w.alive() for w in pool), logs[-3000:]
        assert resumed < RESUME_WITHIN_S, f"the first task after the silence took {resumed:.0f} s"
        assert worst_age[0] < HEARTBEAT_MAX_AGE_S, f"a heartbeat went {worst_age[0]:.0f} s stale"
        assert len(done) == len(set(done)) == len(first) + len(later), "a task was lost or ran twice"
    finally:
        proxy.stop()
