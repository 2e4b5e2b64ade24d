"""``python -m apps.worker.sweeper``: job mode never strands a task.

A ScaledJob starts Jobs only while the list is non-empty; a Job killed mid-task leaves its
task in kombu's ``unacked`` hash, which no job-mode worker lives long enough to sweep.
The sweeper, a real process here, puts it back; the simulated ScaledJob then runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.apps.worker.envelopes import RECORD, real_envelope, variant
from tests.apps.worker.helpers import REPO, Worker, _die_with_parent, clean_env, wait_for
from tests.apps.worker.test_worker import env_for

pytestmark = pytest.mark.slow


class SweeperProcess:
    def __init__(self, env: dict[str, str], workdir: Path, name: str = "sweeper"):
        workdir.mkdir(parents=True, exist_ok=True)
        self.heartbeat = workdir / f"{name}.heartbeat.json"
        self.log_path = workdir / f"{name}.log"
        self.env = {**env, "WORKER_HEARTBEAT_FILE": str(self.heartbeat)}
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "apps.worker.sweeper"], cwd=REPO,
                                     env=clean_env(**self.env), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)

    def beat(self) -> dict:
        return json.loads(self.heartbeat.read_text()) if self.heartbeat.exists() else {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def probe(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "apps.worker.healthcheck", *args], cwd=REPO,
                              env=clean_env(**self.env), capture_output=True, text=True, timeout=30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


class ScaledJobSimulator:
    """What KEDA's ScaledJob does with ``listLength: 1``: while the list is non-empty and no
    Job runs, start one (a job-mode worker process, which exits when idle)."""

    def __init__(self, server, env: dict[str, str], workdir: Path, queue: str = "celery"):
        self.server, self.env, self.workdir, self.queue = server, env, workdir, queue
        self.jobs: list[Worker] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def running(self) -> Worker | None:
        return next((j for j in self.jobs if j.alive()), None)

    def _run(self) -> None:
        with self.server.client() as c:
            while not self._stop.wait(0.2):
                if self.running() is None and c.llen(self.queue) > 0:
                    self.jobs.append(Worker(self.env, self.workdir, name=f"job{len(self.jobs) + 1}").start())

    def __enter__(self) -> ScaledJobSimulator:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for job in self.jobs:
            job.close()


def test_job_killed_mid_task_is_redone_with_no_more_traffic(redis_factory, send, tmp_path):
    """The reproduction: a Job killed mid-task, one more task, then no traffic. With
    the sweeper the killed task is back in the list within about the visibility timeout and
    the next Job runs it (Azure Cache for Redis profile)."""
    server = redis_factory(profile="azure-cache")
    vt, work = 12, 2  # hard limit 7 s; the Jobs exit after 1 s idle, long before vt
    env = env_for(server, WORK_SECONDS_MIN=work, WORK_SECONDS_MAX=work, CELERY_VISIBILITY_TIMEOUT=vt,
                  WORKER_IDLE_EXIT_SECONDS=1)
    sweeper = SweeperProcess(env, tmp_path / "sweeper")
    try:
        with ScaledJobSimulator(server, env, tmp_path / "jobs") as keda, server.client() as c:
            stranded = send(env, RECORD)
            wait_for(lambda: c.hlen("unacked") == 1, 30, interval=0.05, message="first Job running the task")
            keda.jobs[0].kill()  # node loss: the whole pod, no warm shutdown
            killed_at = time.monotonic()
            assert not c.exists(f"users:{stranded}") and c.llen("celery") == 0
            other = send(env, RECORD)
            wait_for(lambda: c.exists(f"users:{other}"), 30, message="the next task, on a new Job")
            wait_for(lambda: keda.running() is None, 15, message="that Job exits when idle")
            assert c.hlen("unacked") == 1 and not c.exists(f"users:{stranded}")  # stranded, no Job
            wait_for(lambda: sweeper.beat().get("restored") == 1, vt + 25, interval=0.1,
                     message="the sweeper restoring the stranded task")
            elapsed = time.monotonic() - killed_at
            # Back in the list after the visibility timeout + one sweep (1 s) + its heartbeat
            # (+ slack for a loaded machine); not before the timeout.
            assert vt - 1 <= elapsed <= vt + 1 + 1 + 3, elapsed
            # A Job's start-up and the 2 s task: seconds, more under load (not what is measured).
            wait_for(lambda: c.exists(f"users:{stranded}"), 40, interval=0.2, message="the stranded task, redone")
            wait_for(lambda: keda.running() is None and not c.exists("unacked", "celery.inflight"), 20,
                     message="nothing left")
            assert len(keda.jobs) == 3 and c.llen("celery") == 0
        assert wait_for(lambda: sweeper.beat().get("restored") == 1, 10, message="sweeper count")
        assert "restored 1 unacked message(s)" in sweeper.log()
    finally:
        sweeper.close()


def test_two_sweepers_never_restore_a_message_twice(redis_factory, send, tmp_path):
    """30 abandoned unacked messages and 10 stranded inflight ones, two sweepers started
    together (and a third process's worth of contention from the mutex): each message is
    back in the list exactly once."""
    server = redis_factory(profile="azure-cache")
    vt = 6
    env = env_for(server, CELERY_VISIBILITY_TIMEOUT=vt)
    envelope = real_envelope(server, send, env, "celery")
    abandoned = [variant(envelope) for _ in range(30)]
    stranded = [variant(envelope) for _ in range(10)]
    with server.client() as c:
        old = time.time() - 2 * vt
        for message in abandoned:
            tag = message["properties"]["delivery_tag"]
            c.hset("unacked", tag, json.dumps([message, "", "celery"]))
            c.zadd("unacked_index", {tag: old})
        for message in stranded:
            c.lpush("celery.inflight", json.dumps(message))
    sweepers = [SweeperProcess(env, tmp_path / f"s{i}", name=f"s{i}") for i in range(2)]
    try:
        with server.client() as c:
            wait_for(lambda: not c.exists("unacked", "unacked_index", "celery.inflight"), vt + 20,
                     interval=0.2, message="everything restored")
            queued = [json.loads(m)["headers"]["id"] for m in c.lrange("celery", 0, -1)]
        expected = sorted(m["headers"]["id"] for m in abandoned + stranded)
        assert sorted(queued) == expected  # all 40, none twice
        wait_for(lambda: all(s.beat() for s in sweepers), 10, message="heartbeats")
        time.sleep(2)  # a few more sweeps: still nothing restored twice
        with server.client() as c:
            assert c.llen("celery") == 40
        assert sum(s.beat()["restored"] for s in sweepers) == 40
    finally:
        for s in sweepers:
            s.close()


def test_sweeper_probes_follow_redis_and_sigterm_exits_zero(redis_factory, tmp_path):
    server = redis_factory()
    env = env_for(server, WORKER_HEARTBEAT_INTERVAL=0.5, WORKER_HEARTBEAT_MAX_AGE=2)
    sweeper = SweeperProcess(env, tmp_path)
    try:
        wait_for(sweeper.heartbeat.exists, 20, message="first sweep")
        first = sweeper.probe()
        assert first.returncode == 0, first.stderr
        assert sweeper.beat()["role"] == "sweeper" and sweeper.beat()["pid"] == sweeper.proc.pid
        assert sweeper.probe("--ready").returncode == 0
        server.stop()
        wait_for(lambda: sweeper.probe("--ready").returncode == 1, 15, interval=0.5, message="not ready without Redis")
        time.sleep(2.5)  # past WORKER_HEARTBEAT_MAX_AGE: waiting for Redis, it stays live
        assert sweeper.probe().returncode == 0 and sweeper.proc.poll() is None  # it keeps retrying
        assert sweeper.beat()["waiting_for_redis"]["reason"] == "connection"
        assert sweeper.log().count("Redis unavailable (connection)") == 1  # once, not per attempt
        sent = time.monotonic()
        os.kill(sweeper.proc.pid, signal.SIGTERM)  # while Redis is unreachable
        assert sweeper.proc.wait(timeout=10) == 0
        assert time.monotonic() - sent < 5
        server.start()
        again = SweeperProcess(env, tmp_path, name="again")
        try:
            wait_for(again.heartbeat.exists, 20, message="sweeping again")
            os.kill(again.proc.pid, signal.SIGTERM)
            assert again.proc.wait(timeout=10) == 0
        finally:
            again.close()
    finally:
        sweeper.close()


def test_sweeper_bad_environment_is_named_not_echoed(tmp_path):
    secret = f"pw-{uuid.uuid4().hex}"
    out = subprocess.run([sys.executable, "-m", "apps.worker.sweeper"], cwd=REPO, capture_output=True, text=True,
                         env=clean_env(REDIS_PASSWORD=secret, CELERY_VISIBILITY_TIMEOUT="soon"), timeout=60)
    assert out.returncode == 2
    assert "CELERY_VISIBILITY_TIMEOUT" in out.stderr
    assert secret not in out.stdout + out.stderr and "soon" not in out.stderr
