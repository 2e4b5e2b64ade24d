"""Suite-wide: the Redis command audit (tests/apps/command_audit.py) judged once, at the end.

Every redis-server the app tests start records, through MONITOR, what the apps sent it.
When the session ends, any command or argument form that Redis 6.0 lacks (Azure Cache for
Redis is 6.0.14) fails the run, with the list.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests import run_cache
from tests.apps.command_audit import AUDIT


def pytest_configure(config: pytest.Config) -> None:
    """The controlling process makes the run's shared cache (tests/run_cache.py) before any
    pytest-xdist worker starts: they inherit its path."""
    if not hasattr(config, "workerinput") and run_cache.RUN_CACHE_ENV not in os.environ:
        config._run_cache = tempfile.mkdtemp(prefix="redis-keda-run-")  # type: ignore[attr-defined]
        os.environ[run_cache.RUN_CACHE_ENV] = config._run_cache  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (tens of seconds each: real fleets, chaos, checkov, a live
    Prometheus) run first, the rest in their usual order. With ``make test``'s
    ``--dist load --maxschedchunk 2`` the xdist workers take tests almost one by one from
    the front, so the long ones are spread over the workers at the start and no long test
    starts last while the other workers sit idle (the run's longest-processing-time-first
    schedule). Every xdist worker sorts the same collection the same way."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_unconfigure(config: pytest.Config) -> None:
    path = getattr(config, "_run_cache", None)
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.environ.pop(run_cache.RUN_CACHE_ENV, None)


@pytest.fixture(scope="session", autouse=True)
def redis_command_audit():
    yield AUDIT
    problems = AUDIT.violations()
    if problems:
        pytest.fail("the apps sent Redis commands that Azure Cache for Redis (Redis 6.0.14) does not have:\n  "
                    + "\n  ".join(problems), pytrace=False)
