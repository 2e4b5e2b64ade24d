"""The hot path: a plain ``GET /github_stats/{tag}`` whose bytes are in the in-process cache.

Served before FastAPI's middleware stack, routing, dependency solving and Response object:
those cost several times more than sending 12 kB of cached bytes. Everything else (any
query string, a local miss, unknown tags, errors, probes, metrics, OpenAPI) goes to the
FastAPI app unchanged. The answer is the same as the route's: same bytes, same headers,
same metrics (request counter, latency histogram, local cache hit). ``HOT_PATH=false``
turns it off.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from apps.cache_api.cache import TagCache

PREFIX = "/github_stats/"
ROUTE = PREFIX + "{tag}"
_PREFIX_LEN = len(PREFIX)
_JSON = (b"content-type", b"application/json")
_LOCAL = (b"x-cache", b"local")


class CacheAPI(FastAPI):
    """FastAPI, with the hot path in front. ``tag_cache`` is set by the lifespan."""

    hot_path: bool = True
    tag_cache: TagCache | None = None  # the lifespan's (None outside the lifespan)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.hot_path
            and scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope["query_string"]
            and scope["path"].startswith(PREFIX)
        ):
            start = time.perf_counter()
            cache = self.tag_cache
            body = cache.local.get(scope["path"][_PREFIX_LEN:].lower()) if cache is not None else None
            if body and cache is not None:  # b"" marks an unknown tag: let the route answer the 404
                cache._hit_local.inc()
                await send({
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode()), _JSON, _LOCAL],
                })
                await send({"type": "http.response.body", "body": body})
                cache.metrics.observe_request(ROUTE, "GET", 200, time.perf_counter() - start)
                return
        await super().__call__(scope, receive, send)
