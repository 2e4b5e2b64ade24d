"""Failures become JSON answers: Redis trouble and fill timeouts are 503, never a hang or a 500."""

from __future__ import annotations

import time

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from redis.exceptions import RedisError

from apps.cache_api.cache import DatasetUnavailable, FillTimeout
from apps.cache_api.logs import get_logger

log = get_logger("errors")


class _Throttle:
    """At most one log line per ``interval`` seconds; the line says how many were suppressed.

    While Redis is down every request fails: one warning per request would flood the logs.
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



def json_error(status_code: int, error: str, detail: str, headers: dict[str, str] | None = None,
               **extra: object) -> Response:
    """``{"error": <machine code>, "detail": <human text>, ...}`` with the given status."""
    body = orjson.dumps({"error": error, "detail": detail, **extra})
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


async def _redis_error(request: Request, exc: Exception) -> Response:
    request.app.state.metrics.redis_errors.inc()
    suppressed = request.app.state.redis_log_throttle.allow()
    if suppressed is not None:
        log.warning("redis unavailable", extra={"path": request.url.path, "error": type(exc).__name__,
                                                "problem": str(exc), "suppressed_since_last": suppressed})
    return json_error(503, "redis_unavailable", "the cache backend is unavailable; retry shortly",
                      headers={"Retry-After": "1"})


async def _fill_timeout(request: Request, exc: Exception) -> Response:
    return json_error(503, "dataset_loading", str(exc), headers={"Retry-After": "1"})


async def _dataset_unavailable(request: Request, exc: Exception) -> Response:
    return json_error(503, "dataset_unavailable", "the dataset could not be read", headers={"Retry-After": "5"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
    return json_error(500, "internal_error", "unexpected error")


def install(app: FastAPI) -> None:
    app.state.redis_log_throttle = _Throttle()
    app.add_exception_handler(RedisError, _redis_error)
    app.add_exception_handler(FillTimeout, _fill_timeout)
    app.add_exception_handler(DatasetUnavailable, _dataset_unavailable)
    app.add_exception_handler(Exception, _unexpected)
