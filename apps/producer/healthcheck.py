"""``python -m apps.producer.healthcheck``: the forever- or standby-mode heartbeat file is fresh.

A bad variable is named, never echoed (exit 2): pydantic's own message would print the
whole environment it read, REDIS_PASSWORD included.
"""

from __future__ import annotations

import json
import sys
import time

from apps.common.config_errors import load_settings
from apps.producer.settings import ProducerSettings


def check(path, max_age: float, now: float | None = None) -> tuple[bool, str]:
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
    return True, f"ok: heartbeat {age:.1f}s old, {beat.get('sent', 0)} sent"


def main() -> int:
    settings = load_settings(ProducerSettings, "producer health check")
    ok, message = check(settings.producer_heartbeat_file, settings.producer_heartbeat_max_age)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
