"""The FastAPI app: ``uvicorn apps.cache_api.main:app --host 0.0.0.0 --port 8000``.

``create_app(settings)`` builds an independent app (own Redis clients, metrics registry,
in-process cache): tests build several against one Redis to play a fleet.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from apps.cache_api import errors
from apps.cache_api.cache import TagCache
from apps.cache_api.hotpath import CacheAPI
from apps.cache_api.logs import configure_logging
from apps.cache_api.metrics import Metrics, MetricsMiddleware
from apps.cache_api.redis_clients import RedisClients
from apps.cache_api.routers import github_stats, ops
from apps.cache_api.settings import Settings, SettingsError, load_settings


def create_app(settings: Settings | None = None) -> CacheAPI:
    settings = settings or load_settings()
    metrics = Metrics()
    # Here, not in the lifespan: uvicorn has set up its loggers and imports the app before
    # its first log line, so every line it writes is JSON too.
    log = configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: CacheAPI) -> AsyncIterator[None]:
        redis = RedisClients.from_settings(settings)
        app.state.redis = redis
        app.state.cache = app.tag_cache = TagCache(settings, redis, metrics)
        log.info("cache api starting", extra={"settings": settings.summary()})
        # Startup objects (FastAPI, pydantic, redis-py...) never die: keep them out of the
        # collector's way, so that GC pauses on the hot path stay short.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            app.tag_cache = None
            await app.state.cache.aclose()
            await redis.aclose()
            log.info("cache api stopped")

    # Metrics are Prometheus (our middleware); FastAPI's native OpenTelemetry bridge is off:
    # it looks at the global providers on every request, which the hot path cannot afford.
    app = CacheAPI(title="Cache API", version="0.1.0", lifespan=lifespan,
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.settings = settings
    app.state.metrics = metrics
    app.include_router(github_stats.router)
    app.include_router(ops.router)
    errors.install(app)
    app.add_middleware(errors.UnexpectedErrors)  # inside the metrics middleware: it sees the 500
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.hot_path = settings.hot_path
    return app


try:
    app = create_app()
except SettingsError as exc:
    # One line naming the variables (never their values), not uvicorn's 44-line traceback.
    print(f"cache-api: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
