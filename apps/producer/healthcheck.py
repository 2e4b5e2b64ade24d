"""``python -m apps.producer.healthcheck [--ready]``: the forever- or standby-mode heartbeat is fresh.

Liveness: the heartbeat file is fresh. The producer keeps it fresh while it waits for Redis
or for room in Redis (backpressure), because restarting a producer that waits cannot help.
Readiness (``--ready``): also not while it waits (the heartbeat says what for).

A bad variable is named, never echoed (exit 2): pydantic's own message would print the
whole environment it read, REDIS_PASSWORD included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from apps.common.config_errors import load_settings
from apps.producer.settings import ProducerSettings


def check(path, max_age: float, now: float | None = None, ready: bool = False) -> tuple[bool, str]:
    now = time.time() if now is None else now
    try:
        beat = json.loads(path.read_text())
        age = now - float(beat["ts"])
    except FileNotFoundError:
        return False, f"no heartbeat file at {path}"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"unreadable heartbeat file {path}: {exc}"
    if age > max_age:
        return False, f"heartbeat is {age:.0f}s old (max {max_age:g}s): producer stuck"
    waiting = beat.get("waiting")
    if isinstance(waiting, dict):
        reason = waiting.get("reason", "unknown")
        what = "room in Redis (memory at the publish threshold)" if reason == "memory" else f"Redis ({reason})"
        since = waiting.get("since")
        how_long = f" for {now - float(since):.0f}s" if isinstance(since, (int, float)) else ""
        message = f"waiting for {what}{how_long}"
        if ready:
            return False, f"not ready: {message}"
        return True, f"ok: heartbeat {age:.1f}s old, {beat.get('sent', 0)} sent; {message}"
    return True, f"ok: heartbeat {age:.1f}s old, {beat.get('sent', 0)} sent"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apps.producer.healthcheck",
                                     description="Liveness (default) or readiness of the long-running producer.")
    parser.add_argument("--ready", action="store_true", help="readiness: also fail while the producer waits")
    args = parser.parse_args(argv)
    settings = load_settings(ProducerSettings, "producer health check")
    ok, message = check(settings.producer_heartbeat_file, settings.producer_heartbeat_max_age, ready=args.ready)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
