"""Prometheus metrics of a long-running producer (``--forever``, ``--standby``).

Served on ``PRODUCER_METRICS_PORT`` (0 = off) by the Deployment's process only: a
``--count`` burst run with ``kubectl exec`` in the same pod is another process, which
would collide on the port, so it serves nothing and prints its own count instead.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

from apps.common.redis_errors import REASONS

SENT = Counter("producer_tasks_sent", "Tasks published to CELERY_QUEUE by this process.")
PUBLISH_ERRORS = Counter("producer_publish_errors",
                         "Bursts that stopped with a task not published (--max-wait reached; the process exits non-zero).")
REDIS_UNAVAILABLE = Counter("producer_redis_unavailable",
                            "Publish attempts Redis refused or could not take, by reason (then retried).", ["reason"])
WAITING_FOR_REDIS = Gauge("producer_waiting_for_redis", "1 while the producer waits for Redis to accept, else 0.")
BACKPRESSURE = Counter("producer_backpressure",
                       "Looks at Redis's memory that found it at the publish threshold (the producer then held).")
HOLDING = Gauge("producer_holding",
                "1 while the producer holds its publishes because Redis's memory is at the threshold, else 0.")
SCHEDULE_LAG = Gauge("producer_schedule_lag_seconds",
                     "How far behind its schedule (--forever --rate R) the producer sends its next task; 0 on time.")
for _reason in REASONS:
    REDIS_UNAVAILABLE.labels(_reason)


def serve(port: int) -> bool:
    """Start the /metrics HTTP server on ``port``; ``False`` (nothing started) when 0."""
    if not port:
        return False
    start_http_server(port)
    return True
