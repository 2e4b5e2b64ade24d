"""``Annotated`` dependencies: what a handler needs, taken from the app's state (set in the lifespan)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from apps.cache_api.cache import TagCache
from apps.cache_api.metrics import Metrics
from apps.cache_api.redis_clients import RedisClients
from apps.cache_api.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_cache(request: Request) -> TagCache:
    return request.app.state.cache


def get_redis(request: Request) -> RedisClients:
    return request.app.state.redis


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
CacheDep = Annotated[TagCache, Depends(get_cache)]
RedisDep = Annotated[RedisClients, Depends(get_redis)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
