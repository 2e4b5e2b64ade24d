"""``Annotated`` dependencies: what a handler needs, taken from the app's state (set in the lifespan).

They are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in a worker
thread, which costs more than the whole hot read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from apps.cache_api.cache import TagCache
from apps.cache_api.metrics import Metrics
from apps.cache_api.redis_clients import RedisClients


async def get_cache(request: Request) -> TagCache:
    return request.app.state.cache


async def get_redis(request: Request) -> RedisClients:
    return request.app.state.redis


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


CacheDep = Annotated[TagCache, Depends(get_cache)]
RedisDep = Annotated[RedisClients, Depends(get_redis)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
