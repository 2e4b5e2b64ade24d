"""Probes and metrics: ``/healthz`` (liveness, no Redis), ``/readyz`` (Redis reachable), ``/metrics``."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from apps.cache_api.deps import MetricsDep, RedisDep
from apps.cache_api.errors import json_error

router = APIRouter(tags=["ops"])

_OK = b'{"status":"ok"}'
_READY = b'{"status":"ready"}'


@router.get("/healthz", response_class=Response)
async def healthz() -> Response:
    return Response(_OK, media_type="application/json")


@router.get("/readyz", response_class=Response)
async def readyz(redis: RedisDep) -> Response:
    try:
        replica_problem = await redis.ping()
    except RedisError as exc:
        return json_error(503, "redis_unavailable", f"{type(exc).__name__}: {exc}", status="unready")
    if replica_problem is not None:
        # Still ready: reads fall back to the primary. The body and a metric say it is degraded.
        return Response(orjson.dumps({"status": "ready", "replica": "unreachable", "detail": replica_problem}),
                        media_type="application/json")
    return Response(_READY, media_type="application/json")


@router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
