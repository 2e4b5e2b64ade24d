"""Structured logs: one JSON object per line on stderr, for our logger and uvicorn's."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime

import orjson

LOGGER_NAME = "apps.cache_api"
_STD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName", "color_message"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra}``; extras come from ``logger.info(msg, extra={...})``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> logging.Logger:
    """Idempotent: JSON handler on our logger; uvicorn's handlers (if any) switched to JSON too."""
    formatter = JsonFormatter()
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    logger.propagate = False
    if not any(getattr(h, "_cache_api", False) for h in logger.handlers):
        ours = logging.StreamHandler(sys.stderr)
        ours._cache_api = True  # type: ignore[attr-defined]
        logger.addHandler(ours)
    for each in (logger, *(logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access"))):
        for handler in each.handlers:
            handler.setFormatter(formatter)
    return logger


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}")


class Throttle:
    """At most one log line per ``interval`` seconds; the line says how many were suppressed.

    While Redis is down, or a corrupt value is read, every request hits the same problem:
    one line per request would flood the logs.
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.last = float("-inf")
        self.suppressed = 0

    def allow(self) -> int | None:
        """None: stay quiet. Otherwise the number of lines suppressed since the last one."""
        now = time.monotonic()
        if now - self.last < self.interval:
            self.suppressed += 1
            return None
        self.last, suppressed, self.suppressed = now, self.suppressed, 0
        return suppressed
