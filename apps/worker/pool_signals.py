"""A pool process takes its soft time limit only while it runs a task.

Celery's main process keeps each task's time limits on its own event loop and, at the soft
limit, sends ``SIGUSR1`` to the pool process it gave the task to; billiard raises
``SoftTimeLimitExceeded`` wherever that signal lands. While the main loop waits for Redis (an
outage, a path that answers nothing) it neither takes the finished task's result nor fires
its timers, so the soft limit arrives late, after the task has ended: the idle pool process
raised it inside billiard's job loop and died (``Pool process ... error:
SoftTimeLimitExceeded``), and its replacement, started while the main loop was still busy,
was killed for a late ``UP`` message. Seen after every outage longer than a task's soft
limit (docs/worker.md, "In an outage").

Here the pool process installs billiard's handler when a task starts and ignores the signal
once it has ended; the main process still enforces the hard limit.
"""

from __future__ import annotations

import signal

from billiard.exceptions import SoftTimeLimitExceeded
from celery import signals

#: billiard's soft-time-limit signal (``billiard.pool.SIG_SOFT_TIMEOUT``).
SOFT_LIMIT_SIGNAL = signal.SIGUSR1


def _raise_soft_limit(signum, frame):
    raise SoftTimeLimitExceeded()


def task_started(**_) -> None:
    signal.signal(SOFT_LIMIT_SIGNAL, _raise_soft_limit)


def task_ended(**_) -> None:
    signal.signal(SOFT_LIMIT_SIGNAL, signal.SIG_IGN)


def connect() -> None:
    """Wire the two handlers (before the worker builds its task tracers)."""
    signals.task_prerun.connect(task_started, weak=False)
    signals.task_postrun.connect(task_ended, weak=False)
