"""Failures become JSON answers: Redis trouble and fill timeouts are 503, never a hang or a 500."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from redis.exceptions import RedisError

from apps.cache_api.cache import DatasetUnavailable, FillTimeout
from apps.cache_api.logs import get_logger

log = get_logger("errors")


def json_error(status_code: int, error: str, detail: str, headers: dict[str, str] | None = None,
               **extra: object) -> Response:
    """``{"error": <machine code>, "detail": <human text>, ...}`` with the given status."""
    body = orjson.dumps({"error": error, "detail": detail, **extra})
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)


async def _redis_error(request: Request, exc: Exception) -> Response:
    request.app.state.metrics.redis_errors.inc()
    log.warning("redis unavailable", extra={"path": request.url.path, "error": type(exc).__name__, "problem": str(exc)})
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
    app.add_exception_handler(RedisError, _redis_error)
    app.add_exception_handler(FillTimeout, _fill_timeout)
    app.add_exception_handler(DatasetUnavailable, _dataset_unavailable)
    app.add_exception_handler(Exception, _unexpected)
