"""Failures become JSON answers: Redis trouble, fill timeouts and an unloadable dataset are
503, bad requests 422, never a hang; an unexpected error is a 500 logged at most once a second.

No answer echoes what the client sent (tag, query values) or a configured value.
"""

from __future__ import annotations

import math

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.cache_api.cache import FillTimeout
from apps.cache_api.loader import DatasetUnavailable
from apps.cache_api.logs import Throttle, get_logger
from apps.common.redis_errors import describe

log = get_logger("errors")


def json_error(status_code: int, error: str, detail: object, headers: dict[str, str] | None = None,
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
    # ``reason``: what went wrong (loading, the client limit, refused, timed out...), without
    # the address or any configured value (apps/common/redis_errors.py, describe).
    return json_error(503, "redis_unavailable", "the cache backend is unavailable; retry shortly",
                      headers={"Retry-After": "1"}, reason=describe(exc))


async def _fill_timeout(request: Request, exc: Exception) -> Response:
    return json_error(503, "dataset_loading", str(exc), headers={"Retry-After": "1"})


async def _dataset_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DatasetUnavailable)
    problem = exc.problem
    return json_error(503, problem.reason, problem.detail,
                      headers={"Retry-After": str(max(1, math.ceil(problem.retry_after)))})


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """FastAPI's 422, without the ``input`` it would echo back."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return json_error(422, "invalid_request", detail)


class UnexpectedErrors:
    """Pure ASGI, inside the metrics middleware: an exception no handler took becomes a JSON
    500, logged with its traceback at most once a second (the line counts the others).

    It is not re-raised: Starlette's outer error middleware would re-raise it to uvicorn,
    which logs the whole traceback again, for every request.
    """

    def __init__(self, app: ASGIApp, interval: float = 1.0) -> None:
        self.app = app
        self.throttle = Throttle(interval)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            suppressed = self.throttle.allow()
            if suppressed is not None:
                log.error("unhandled error", exc_info=exc,
                          extra={"route": getattr(scope.get("route"), "path", None),
                                 "suppressed_since_last": suppressed})
            if not started:
                await json_error(500, "internal_error", "unexpected error")(scope, receive, send)


def install(app: FastAPI) -> None:
    """Exception handlers; :class:`UnexpectedErrors` is added with the other middleware (main.py)."""
    app.state.redis_log_throttle = Throttle()
    app.add_exception_handler(RedisError, _redis_error)
    app.add_exception_handler(FillTimeout, _fill_timeout)
    app.add_exception_handler(DatasetUnavailable, _dataset_unavailable)
    app.add_exception_handler(RequestValidationError, _invalid_request)
