"""A busy worker stays live through a Redis outage (issue 31, fault 2).

One worker with a task running; then for 45 s Redis answers nothing at all (the tests' own
proxy: every connection, open or new, silent: no bytes, no reset), or is gone (every
connection closed, new ones too). The liveness probe runs every second the whole time, as
the kubelet would.

Before: the heartbeat went 53-64 s stale, then the probe said "a task has run 45s, past its
hard time limit 9s + 30s: worker stuck" though the task had finished: the main loop, waiting
for Redis, never took its result, and its time was counted against the worker. With the
stack's probe (20 s x 3) every busy pod was restarted in an outage over ~1.5 min. Now: the
probe passes throughout; once Redis is back every task is done, none lost (after a black
hole the worker may stall before it consumes again: open, see below).
"""

from __future__ import annotations

import time

import pytest

from tests.apps.tcp_proxy import TcpProxy
from tests.apps.worker.envelopes import RECORD
from tests.apps.worker.helpers import wait_for
from tests.apps.worker.test_worker import env_for, probe, user_keys

pytestmark = pytest.mark.slow

OUTAGE_S = 45.0  # the probe failed from 32 s (black hole) and 38 s (refused) before


@pytest.mark.parametrize("fault", ["black hole", "refused"])
def test_a_busy_worker_stays_live_through_an_outage(redis_server, send, workers, fault):
    """``black hole``: no bytes, no reset; ``refused``: every connection closed, new ones too."""
    proxy = TcpProxy(redis_server.port).start()
    outage = proxy.blackhole if fault == "black hole" else proxy.refuse
    try:
        # 4 s tasks: hard time limit ceil(4) + 5 = 9 s, as in the issue.
        worker_env = env_for(redis_server, REDIS_PORT=proxy.port, WORK_SECONDS_MIN=4, WORK_SECONDS_MAX=4,
                             CELERY_VISIBILITY_TIMEOUT=30)
        direct_env = env_for(redis_server, WORK_SECONDS_MIN=4, WORK_SECONDS_MAX=4, CELERY_VISIBILITY_TIMEOUT=30)
        worker = workers(worker_env).wait_ready()
        ids = [send(direct_env, RECORD) for _ in range(3)]
        wait_for(lambda: (worker.beat() or {}).get("active", 0) >= 1, 30, interval=0.2, message="a task running")

        outage(True)
        failures = []
        end = time.monotonic() + OUTAGE_S
        while time.monotonic() < end:
            out = probe(worker)
            if out.returncode != 0:
                failures.append(f"{OUTAGE_S - (end - time.monotonic()):.0f}s: {out.stderr.strip()}")
            time.sleep(1)
        outage(False)
        assert not failures, "the liveness probe failed during the outage:\n  " + "\n  ".join(failures[:10])

        if fault == "black hole":
            # Not asserted yet: after a black hole the worker can stall before it consumes
            # again, blocked reading the pub/sub connection kombu has just dropped as stale
            # (docs/worker.md, "In an outage": open). Liveness, above, holds.
            assert worker.alive(), worker.log()[-3000:]
            return
        with redis_server.client() as c:
            wait_for(lambda: all(c.exists(f"users:{i}") for i in ids), 90, interval=0.5,
                     message="every task done after the outage")
            assert len(user_keys(c)) == len(ids)
        assert worker.alive(), worker.log()[-3000:]
    finally:
        proxy.stop()
