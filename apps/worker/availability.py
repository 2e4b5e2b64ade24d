"""The worker image's one "waiting for Redis" state per process (apps/common/redis_wait.py).

The transport (a refused pop, bookkeeping or sweep), the consumer (a reconnect or a
bootstep refused) and the sweeper report failures here; a successful pop or sweep ends the
episode. The heartbeat file carries :func:`status`, so the readiness probe says the process
is waiting and the liveness probe still passes. The worker's main process wires the
metrics (apps/worker/metrics.py); the sweeper serves none.
"""

from __future__ import annotations

import logging

from apps.common.redis_wait import RedisWait

WAIT = RedisWait(logging.getLogger("apps.worker.redis"), "worker")
