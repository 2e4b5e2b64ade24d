"""Celery's reconnect messages, once per interval like the worker's own wait for Redis.

Celery logs these on every reconnect (the second through Python's warnings, which Celery sets
to "always": it says worker_cancel_long_running_tasks_on_connection_loss will default to True
in Celery 6; apps/worker/celery_app.py sets it explicitly). The app factory calls
:func:`install`.
"""

from __future__ import annotations

import logging

from apps.common.redis_wait import OncePerInterval

_installed = False


def install() -> None:
    """Idempotent."""
    global _installed
    if _installed:
        return
    logging.getLogger("celery.worker.consumer.consumer").addFilter(OncePerInterval((
        "consumer: Connection to broker lost", "consumer: Cannot connect to")))
    logging.getLogger("py.warnings").addFilter(OncePerInterval((
        "worker_cancel_long_running_tasks_on_connection_loss",)))
    _installed = True
