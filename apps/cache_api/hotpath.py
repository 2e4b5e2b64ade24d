"""The hot path: a plain ``GET /github_stats/{tag}`` whose bytes are in the in-process cache.

Served by this small ASGI layer in front of FastAPI, without routing, dependency solving
or a Response object: those cost several times more than sending 12 kB of cached bytes.
Everything else (any query string, a local miss, unknown tags, errors, probes, metrics,
OpenAPI) falls through to the FastAPI app unchanged. The answer is the same as the
route's: same bytes, same headers, same metrics (request counter, latency histogram,
local cache hit). ``HOT_PATH=false`` turns it off.
"""

from __future__ import annotations

import time

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from apps.cache_api.metrics import Metrics

PREFIX = "/github_stats/"
ROUTE = PREFIX + "{tag}"


class HotPathMiddleware:
    def __init__(self, app: ASGIApp, state: State, metrics: Metrics) -> None:
        self.app = app
        self.state = state
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope["query_string"]
            and scope["path"].startswith(PREFIX)
        ):
            start = time.perf_counter()
            cache = getattr(self.state, "cache", None)
            body = cache.local.get(scope["path"][len(PREFIX):].lower()) if cache is not None else None
            if body:  # b"" marks an unknown tag: let the route answer the 404
                cache._hit_local.inc()
                await send({
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", str(len(body)).encode()),
                        (b"content-type", b"application/json"),
                        (b"x-cache", b"local"),
                    ],
                })
                await send({"type": "http.response.body", "body": body})
                self.metrics.observe_request(ROUTE, "GET", 200, time.perf_counter() - start)
                return
        await self.app(scope, receive, send)
