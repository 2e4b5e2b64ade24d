"""Liveness ``python -m apps.worker.healthcheck``, readiness ``... --ready`` (exit 0 yes, 1 no).

The worker's main process rewrites a heartbeat file every WORKER_HEARTBEAT_INTERVAL
seconds from its event loop (apps/worker/runtime.py), and also while it waits for Redis
(a reconnect, a refused pop: the file then says ``waiting_for_redis``). Not live when:
- the file is missing or older than WORKER_HEARTBEAT_MAX_AGE (event loop stuck, process
  dead, never started), or
- a task has been running longer than the hard time limit plus a grace period (the
  pool failed to kill it: a stuck worker).
Not ready when not live, or while it waits for Redis: a worker waiting for a full,
restarting, failing-over or crowded Redis is alive (restarting it cannot help, and a
crash-looping pod would only add reconnects), but it takes no work (docs/worker.md).

It reads only the environment and the file: no Redis round trip, no Celery import. The
sweeper (``python -m apps.worker.sweeper``) writes the same file after each sweep, so this
is its probe too. Empty variables mean unset; a bad value is named, never echoed (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from apps.common.config_errors import load_settings
from apps.worker.heartbeat import HeartbeatSettings

#: Seconds a task may run past its hard time limit before the worker is called stuck.
STUCK_GRACE_SECONDS = 30.0


def check(path: Path, max_age: float, now: float | None = None, ready: bool = False) -> tuple[bool, str]:
    """``(ok, message)`` for liveness, or with ``ready`` for readiness."""
    now = time.time() if now is None else now
    try:
        beat = json.loads(path.read_text())
        ts = float(beat["ts"])
    except FileNotFoundError:
        return False, f"no heartbeat file at {path} (worker not started or not connected)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"unreadable heartbeat file {path}: {exc}"
    age = now - ts
    if age > max_age:
        return False, f"heartbeat is {age:.0f}s old (max {max_age:g}s): worker event loop stuck or down"
    # A task's time runs on with the file's age, except while the worker waits for Redis:
    # then it is counted only until the wait began (apps/worker/runtime.py, write_heartbeat).
    oldest = float(beat.get("oldest_active_seconds", 0.0)) + (0.0 if beat.get("waiting_for_redis") else max(age, 0.0))
    limit = float(beat.get("task_time_limit", 0.0))
    if limit and oldest > limit + STUCK_GRACE_SECONDS:
        return False, (f"a task has run {oldest:.0f}s, past its hard time limit {limit:g}s "
                       f"+ {STUCK_GRACE_SECONDS:g}s: worker stuck")
    waiting = waiting_message(beat.get("waiting_for_redis"), now)
    if ready and waiting:
        return False, f"not ready: {waiting}"
    return True, (f"ok: heartbeat {age:.1f}s old, {beat.get('active', 0)} task(s) running"
                  + (f"; {waiting}" if waiting else ""))


def waiting_message(waiting, now: float) -> str | None:
    """``waiting for Redis (oom) for 42s, 9 failed attempts``, or None."""
    if not isinstance(waiting, dict):
        return None
    since = waiting.get("since")
    how_long = f" for {now - float(since):.0f}s" if isinstance(since, (int, float)) else ""
    return (f"waiting for Redis ({waiting.get('reason', 'unknown')}){how_long}, "
            f"{waiting.get('attempts', '?')} failed attempts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.worker.healthcheck",
                                     description="Liveness (default) or readiness of the worker or sweeper.")
    parser.add_argument("--ready", action="store_true",
                        help="readiness: also fail while the process waits for Redis")
    args = parser.parse_args(argv)
    settings = load_settings(HeartbeatSettings, "worker health check")
    ok, message = check(settings.worker_heartbeat_file, settings.worker_heartbeat_max_age, ready=args.ready)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
