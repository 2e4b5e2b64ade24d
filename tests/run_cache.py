"""One cache per test run, shared by every pytest-xdist worker of that run.

Stack renders are deterministic for a given checkout, and several test processes need the
same ones: the first process to ask renders, the others wait for it and read the result.

``tests/conftest.py`` creates the run's directory in the controlling process (before the
workers start, so they inherit ``$RUN_CACHE_ENV``) and removes it when the run ends. A
process started without it (a script, a test run outside pytest) gets a private directory
of its own, removed at exit: the cache is never shared across runs, so it cannot be stale.
Each entry is built under an exclusive ``flock`` and marked complete last.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import os
import pickle
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
RUN_CACHE_ENV = "REDIS_KEDA_TEST_RUN_CACHE"
_DONE = ".complete"
_LOCAL = threading.Lock()
_PRIVATE: list[Path] = []


def run_dir() -> Path:
    """The run's shared directory, or this process's private one."""
    shared = os.environ.get(RUN_CACHE_ENV)
    if shared:
        path = Path(shared)
        path.mkdir(parents=True, exist_ok=True)
        return path
    with _LOCAL:
        if not _PRIVATE:
            path = Path(tempfile.mkdtemp(prefix="run-cache-"))
            atexit.register(shutil.rmtree, path, True)
            _PRIVATE.append(path)
        return _PRIVATE[0]


def _slot(key: str) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return run_dir() / digest


def directory(key: str, produce: Callable[[Path], None]) -> Path:
    """A directory that ``produce(path)`` fills once per run; every process gets the same."""
    slot = _slot(key)
    # flock is per open file: it also serialises two threads of this process on one key.
    with open(f"{slot}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held while another process produces it
        if not (slot / _DONE).is_file():
            shutil.rmtree(slot, ignore_errors=True)
            (slot / "out").mkdir(parents=True)
            produce(slot / "out")
            (slot / _DONE).write_text(key + "\n")
    return slot / "out"


def value(key: str, produce: Callable[[], T]) -> T:
    """``produce()`` once per run (pickled), then read back by every process."""
    out = directory(key, lambda path: (path / "value.pickle").write_bytes(pickle.dumps(produce())))
    return pickle.loads((out / "value.pickle").read_bytes())
