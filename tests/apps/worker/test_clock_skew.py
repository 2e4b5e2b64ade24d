"""One clock: a worker whose clock is off by 300 s neither runs live tasks again nor lets its
own run twice.

kombu scores its unacked index with the recording process's ``time.time()`` and each sweep
compared that with its own clock: two processes whose clocks disagree by more than
(visibility timeout - longest task) saw running tasks as abandoned. Before: one worker 300 s
behind or ahead ran 14-16 of 24 tasks more than once. Now every timestamp the index and the
sweep compare comes from Redis (``TIME``). The skew is real: the worker process runs under
libfaketime (Debian's ``faketime``), its children too, as every process of a pod shares the
node's clock.
"""

from __future__ import annotations

import glob
import time

import pytest

from tests.apps.worker.envelopes import RECORD
from tests.apps.worker.helpers import succeeded, wait_for
from tests.apps.worker.test_worker import env_for, user_keys

pytestmark = pytest.mark.slow

TASKS = 24


def _libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")) + sorted(glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail("libfaketime not found: install Debian's 'faketime' package (make setup does)")
    return found[0]


@pytest.mark.parametrize("skew", ["+300s", "-300s"])
def test_a_skewed_worker_runs_nothing_twice(redis_any, send, workers, skew):
    # Tasks of 1-2 s, visibility timeout 20 s, a sweep every 2 s: only the skew could make
    # a running task look abandoned.
    env = env_for(redis_any, WORK_SECONDS_MIN=1, WORK_SECONDS_MAX=2, CELERY_VISIBILITY_TIMEOUT=20)
    # The monotonic clock is shifted too (libfaketime cannot keep sleeps right otherwise);
    # only differences of it are ever used.
    skewed = {**env, "LD_PRELOAD": _libfaketime(), "FAKETIME": skew}
    pool = [workers(env, concurrency=2).wait_ready(), workers(skewed, concurrency=2).wait_ready()]
    ids = [send(env, RECORD) for _ in range(TASKS)]
    with redis_any.client() as c:
        wait_for(lambda: len(user_keys(c)) >= TASKS, 90, interval=0.3, message="every task done")
    # Long enough for more sweeps after the last task started (a redelivery would show).
    time.sleep(6)
    done = [t for w in pool for t in succeeded(w.log())]
    twice = {t for t in done if done.count(t) > 1}
    assert set(done) == set(ids), "a task was lost"
    assert not twice, f"{len(twice)} of {TASKS} tasks ran more than once with one worker at {skew}"
