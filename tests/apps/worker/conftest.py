"""Fixtures for worker tests: a factory of real worker processes, always cleaned up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apps.worker.helpers import Worker


@pytest.fixture
def workers(tmp_path: Path):
    """``workers(env, concurrency=1)`` starts a worker; every one is stopped at teardown."""
    started: list[Worker] = []

    def start(env: dict[str, str], concurrency: int = 1, **kwargs) -> Worker:
        worker = Worker(env, tmp_path / "workers", concurrency=concurrency, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    # SIGKILL, process groups included: a warm shutdown costs ~2.5 s per worker and the
    # tests that need one (SIGTERM mid-task, job-mode exit) do it themselves. Servers are
    # flushed before the next test, so nothing a killed worker leaves behind carries over.
    for worker in started:
        worker.kill()
        worker.close()


@pytest.fixture
def send():
    """Publish tasks the way the producer does (its own Celery app, no worker code)."""
    from apps.producer.producer import build_app
    from apps.producer.settings import TASK_NAME, ProducerSettings
    from tests.apps.worker.helpers import clean_env

    apps = {}

    def _send(env: dict[str, str], *args, name: str = TASK_NAME, **options) -> str:
        key = tuple(sorted(env.items()))
        if key not in apps:
            import os
            from unittest import mock

            with mock.patch.dict(os.environ, clean_env(**env), clear=True):
                apps[key] = build_app(ProducerSettings())
            # Lets a test send a payload the worker must refuse (serializer="pickle").
            apps[key].conf.accept_content = ["json", "pickle"]
        return apps[key].send_task(name, args=list(args), **options).id

    return _send
