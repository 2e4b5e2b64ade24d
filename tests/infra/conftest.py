"""Pulumi mocks hygiene for the infra tests (no CLI, no network).

- a fresh event loop per test, closed after it;
- ``pulumi_mocks``: sets the recording mocks/monitor, yields the monitor, resets the
  runtime after the test so the next one never sees this one's monitor or root stack;
- ``rendered``: whole-stack renders (tools.render.render_stack), memoized per session
  because a render is deterministic and tests only read it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402
from pulumi.runtime import settings  # noqa: E402

from components.config import PROJECT  # noqa: E402
from tests import run_cache  # noqa: E402
from tools.render import render_stack  # noqa: E402
from tools.render_mocks import RecordingMocks, RecordingMonitor, RenderResult  # noqa: E402

# Pulumi starts a process with a default project/stack and no monitor; start every test
# from the reset state instead.
settings.reset_options()


@pytest.fixture(autouse=True)
def _event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def pulumi_mocks() -> Iterator[RecordingMonitor]:
    """Recording mocks for tests that build components directly (``@pulumi.runtime.test``)."""
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    settings.reset_options()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="test", preview=False, monitor=monitor)
    yield monitor
    settings.reset_options()


_CACHE: dict[tuple, RenderResult] = {}


@pytest.fixture(scope="session")
def rendered() -> Callable[..., RenderResult]:
    """``rendered("local", workerMode="job")`` -> RenderResult, rendered once per test run
    (shared by the pytest-xdist workers: tests/run_cache.py) and memoized per process."""

    def _render(stack: str, **overrides: str) -> RenderResult:
        values = {k: str(v) for k, v in overrides.items()}
        key = (stack, tuple(sorted(values.items())))
        if key not in _CACHE:
            _CACHE[key] = run_cache.value(f"render:{key!r}", lambda: render_stack(stack, values))
        return _CACHE[key]

    return _render


STACKS = ("local", "aks")
MODES = ("deployment", "job")
