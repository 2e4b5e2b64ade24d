"""Real Celery worker processes for the tests: own process group, always reaped."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CELERY = str(Path(sys.executable).with_name("celery"))
_SUCCEEDED = re.compile(r"Task users\.process\[([0-9a-f-]{36})\] succeeded")


def succeeded(log: str) -> list[str]:
    """The task ids a worker's log says succeeded, once per success (a redo shows twice)."""
    return _SUCCEEDED.findall(log)

#: Variables a developer's shell might export that would change the worker under test.
_SCRUB = ("CELERY_", "WORK_SECONDS_", "WORKER_", "REDIS_", "PRODUCER_")


def clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    env.update(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1,
             message: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def _die_with_parent() -> None:
    """Linux: SIGKILL this child if the test process dies without its teardown (a CI
    timeout), so no celery worker outlives the test run. Pool children follow their parent."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Worker:
    """``celery -A apps.worker.celery_app worker`` in its own session (process group)."""

    def __init__(self, env: dict[str, str], workdir: Path, concurrency: int = 1,
                 app: str = "apps.worker.celery_app", name: str | None = None):
        self.name = name or f"w{uuid.uuid4().hex[:8]}"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{self.name}.log"
        self.heartbeat = workdir / f"{self.name}.heartbeat.json"
        self.env = {"WORKER_METRICS_PORT": "0", "WORKER_HEARTBEAT_FILE": str(self.heartbeat),
                    "WORKER_CONCURRENCY": str(concurrency), **env}
        self.app = app
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            # The contract's command; -n only makes worker ids readable in the tests.
            [CELERY, "-A", self.app, "worker", "--loglevel=INFO", "-n", f"{self.name}@localhost"],
            cwd=REPO, env=clean_env(**self.env), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def beat(self) -> dict | None:
        """The last heartbeat the worker wrote (None: none yet, or mid-write)."""
        try:
            return json.loads(self.heartbeat.read_text())
        except (OSError, ValueError):
            return None

    def ready(self) -> bool:
        """What ``healthcheck --ready`` reads: a heartbeat, and not waiting for Redis."""
        beat = self.beat()
        return beat is not None and not beat.get("waiting_for_redis")

    def wait_ready(self, timeout: float = 30) -> Worker:
        """Ready = the main process wrote a heartbeat and is not waiting for Redis (consumer connected)."""
        wait_for(lambda: self.ready() or not self.alive(), timeout, message=f"{self.name} ready")
        if not self.alive():
            raise AssertionError(f"worker exited early ({self.proc.returncode}):\n{self.log()}")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self) -> None:
        """SIGTERM to the main process only (what the kubelet sends to PID 1)."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the whole process group: the pod is gone, children included."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc is not None and self.alive():
            self.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # reap stragglers (pool children) in any case
        if hasattr(self, "_log"):
            self._log.close()
