"""Probes and metrics: ``/healthz`` (liveness, no Redis), ``/readyz``, ``/metrics``.

``/readyz`` is 503 ``unready`` with a reason when the primary does not answer ``PING``
(``redis_unavailable``) or this process cannot load the dataset (``dataset_unavailable``,
``dataset_load_stuck``); it then also starts the retry, since an unready pod gets no
request that would. A degraded pod stays ready (200) and says why: its read replica is
unreachable (reads go to the primary), or Redis refuses writes and it serves its own dataset
load (it then also tries the write again). The details name no host, port, path or
configured value.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from apps.cache_api.deps import CacheDep, MetricsDep, RedisDep
from apps.cache_api.errors import json_error
from apps.common.redis_errors import describe

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
        return json_error(503, "redis_unavailable", describe(exc), status="unready")
    problem = cache.dataset_problem()
    if problem is not None:
        cache.retry_soon()
        return json_error(503, problem.reason, problem.detail, status="unready")
    degraded = cache.degraded_status()
    if replica_problem is None and degraded is None:
        return Response(_READY, media_type="application/json")
    # Still ready, and the body and the metrics say why the pod is degraded: reads fall back to
    # the primary (replica); Redis refuses writes and the pod serves its own load (degraded).
    body: dict[str, object] = {"status": "ready"}
    if replica_problem is not None:
        body |= {"replica": "unreachable", "detail": replica_problem}
    if degraded is not None:
        cache.resume_soon()  # an idle pod gets no request that would try the write again
        if replica_problem is not None:
            body["replica_detail"] = body.pop("detail")
        body |= degraded
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
