"""Probes and metrics: ``/healthz`` (liveness, no Redis), ``/readyz``, ``/metrics``.

``/readyz`` is 503 ``unready`` with a reason when the primary does not answer ``PING``
(``redis_unavailable``) or this process cannot load the dataset (``dataset_unavailable``,
``dataset_load_stuck``); it then also starts the retry, since an unready pod gets no
request that would. The details name no host, port, path or configured value.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from apps.cache_api.deps import CacheDep, MetricsDep, RedisDep
from apps.cache_api.errors import json_error
from apps.cache_api.redis_clients import describe_redis_error

router = APIRouter(tags=["ops"])

_OK = b'{"status":"ok"}'
_READY = b'{"status":"ready"}'


@router.get("/healthz", response_class=Response)
async def healthz() -> Response:
    return Response(_OK, media_type="application/json")


@router.get("/readyz", response_class=Response)
async def readyz(redis: RedisDep, cache: CacheDep) -> Response:
    try:
        replica_problem = await redis.ping()
    except RedisError as exc:
        return json_error(503, "redis_unavailable", describe_redis_error(exc), status="unready")
    problem = cache.dataset_problem()
    if problem is not None:
        cache.retry_soon()
        return json_error(503, problem.reason, problem.detail, status="unready")
    if replica_problem is not None:
        # Still ready: reads fall back to the primary. The body and a metric say it is degraded.
        return Response(orjson.dumps({"status": "ready", "replica": "unreachable", "detail": replica_problem}),
                        media_type="application/json")
    return Response(_READY, media_type="application/json")


@router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
