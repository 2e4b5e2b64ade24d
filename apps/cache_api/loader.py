"""Reading the dataset from disk, with a time bound, and what this process knows about it.

A read can block for ever: a FIFO in ``DATASET_DIR``, a hung network volume. Python cannot
interrupt a blocked ``open()``/``read()``, so the read runs in a *daemon* thread (not the
default executor: asyncio and the interpreter join those threads at exit, and a stuck one
would keep the pod from stopping on SIGTERM). The caller stops waiting after
``DATASET_LOAD_TIMEOUT_SECONDS``; the thread is left behind, and while it is still stuck
this process starts no other read (at most one stuck thread per process).

The outcome of the last read decides readiness (``/readyz``):
- unusable (directory unreadable, no usable file) or over its time bound: a
  :class:`LoadProblem`, reported as not-ready with a reason; a new read is allowed
  ``DATASET_RETRY_SECONDS`` later (requests in between fail fast with 503);
- a read still stuck: not-ready, ``dataset_load_stuck``, until the thread returns.

It does not handle a read that is slow but finishes within the bound: that is just a load.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from apps.cache_api.dataset import Dataset, load_dataset
from apps.cache_api.logs import get_logger
from apps.cache_api.settings import Settings

log = get_logger("loader")

UNAVAILABLE = "dataset_unavailable"
STUCK = "dataset_load_stuck"


@dataclass(frozen=True)
class LoadProblem:
    """Why this process cannot load the dataset. ``detail`` is safe to show (no path, no value)."""

    reason: str  # UNAVAILABLE | STUCK
    detail: str
    retry_after: float  # seconds


class DatasetUnavailable(Exception):
    """The dataset cannot be loaded now (unusable, or a read over its time bound); nothing was cached."""

    def __init__(self, problem: LoadProblem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def run_in_daemon_thread(fn: Callable[[], Dataset]) -> asyncio.Future[Dataset]:
    """``fn()`` in a new daemon thread; the future gets its result (if the loop still runs)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Dataset] = loop.create_future()

    def settle(result: Dataset | None, error: BaseException | None) -> None:
        if future.done():  # the caller stopped waiting
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        result, error = None, None
        try:
            result = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting side
            error = exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop is closed: the process is stopping
            pass

    threading.Thread(target=run, name="dataset-read", daemon=True).start()
    return future


class DatasetReader:
    """One bounded read of ``DATASET_DIR`` at a time, and the last read's problem."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.effective_dataset_load_timeout
        self._problem: LoadProblem | None = None
        self._problem_at = float("-inf")
        self._running_since: float | None = None  # a read thread has not returned yet

    # ---- state ---------------------------------------------------------------------------
    def problem(self) -> LoadProblem | None:
        """What keeps this process from loading now, or None (it may try)."""
        if self._running_since is not None:
            running = time.monotonic() - self._running_since
            if running > self.timeout:
                return LoadProblem(STUCK, f"a dataset read has been blocked for {running:.0f} s, past "
                                          "DATASET_LOAD_TIMEOUT_SECONDS; no new read until it returns",
                                   retry_after=self.settings.dataset_retry_seconds)
        if self._problem is not None:
            return self._problem
        return None

    def retry_due(self) -> bool:
        """A problem is recorded, no read is running, and ``DATASET_RETRY_SECONDS`` have passed."""
        return (self._problem is not None and self._running_since is None
                and time.monotonic() - self._problem_at >= self.settings.dataset_retry_seconds)

    def check(self) -> None:
        """Raise :class:`DatasetUnavailable` unless a read may start now."""
        if self._running_since is not None:
            running = time.monotonic() - self._running_since
            # Within its bound, the read is someone's load in progress in this process.
            if running > self.timeout:
                raise DatasetUnavailable(self.problem())  # type: ignore[arg-type]
        if self._problem is not None and not self.retry_due():
            remaining = self._problem_at + self.settings.dataset_retry_seconds - time.monotonic()
            raise DatasetUnavailable(LoadProblem(self._problem.reason, self._problem.detail,
                                                 retry_after=max(remaining, 0.1)))

    def clear(self) -> None:
        self._problem, self._problem_at = None, float("-inf")

    def _fail(self, problem: LoadProblem) -> DatasetUnavailable:
        self._problem, self._problem_at = problem, time.monotonic()
        return DatasetUnavailable(problem)

    # ---- the read --------------------------------------------------------------------------
    async def read(self) -> Dataset:
        """The usable dataset, or :class:`DatasetUnavailable` (unusable, or over the time bound)."""
        self.check()
        if self._running_since is not None:
            # A read of ours is still within its bound (another tag's fill): do not start a second.
            raise DatasetUnavailable(LoadProblem(UNAVAILABLE, "a dataset read is already running",
                                                 retry_after=1.0))
        self._running_since = time.monotonic()
        future = run_in_daemon_thread(self._read_files)
        try:
            dataset = await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            future.cancel()  # the thread's late result is dropped
            log.error("dataset read exceeded its time bound; the pod reports not-ready until it returns",
                      extra={"dataset_dir": str(self.settings.dataset_dir), "timeout_s": self.timeout})
            raise self._fail(LoadProblem(STUCK, "a dataset read did not finish within "
                                                "DATASET_LOAD_TIMEOUT_SECONDS",
                                         retry_after=self.settings.dataset_retry_seconds)) from None
        if dataset.problem is not None:
            raise self._fail(LoadProblem(UNAVAILABLE, dataset.problem,
                                         retry_after=self.settings.dataset_retry_seconds))
        self.clear()
        return dataset

    def _read_files(self) -> Dataset:
        try:
            if self.settings.dataset_load_delay_seconds:
                time.sleep(self.settings.dataset_load_delay_seconds)  # a slow source, for demos and tests
            return load_dataset(self.settings.dataset_dir)
        finally:
            self._finished()

    def _finished(self) -> None:
        """Runs in the read thread when the read returns (possibly long after its bound)."""
        started, self._running_since = self._running_since, None
        if started is not None and time.monotonic() - started > self.timeout:
            log.warning("a dataset read that had exceeded its time bound returned",
                        extra={"seconds": round(time.monotonic() - started, 1)})
            self._problem_at = float("-inf")  # retry at the next chance
