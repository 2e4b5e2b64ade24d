"""Prometheus metrics of a long-running producer (``--forever``, ``--standby``).

Served on ``PRODUCER_METRICS_PORT`` (0 = off) by the Deployment's process only: a
``--count`` burst run with ``kubectl exec`` in the same pod is another process, which
would collide on the port, so it serves nothing and prints its own count instead.
"""

from __future__ import annotations

from prometheus_client import Counter, start_http_server

SENT = Counter("producer_tasks_sent", "Tasks published to CELERY_QUEUE by this process.")
PUBLISH_ERRORS = Counter("producer_publish_errors",
                         "Publishes that failed after kombu's retries (the process then exits 1).")


def serve(port: int) -> bool:
    """Start the /metrics HTTP server on ``port``; ``False`` (nothing started) when 0."""
    if not port:
        return False
    start_http_server(port)
    return True
