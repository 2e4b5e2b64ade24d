"""The Celery app, built from environment settings.

``celery -A apps.worker.celery_app worker --loglevel=INFO`` (docs/contract.md).
"""

from __future__ import annotations

import sys
from urllib.parse import quote

from celery import Celery
from pydantic import ValidationError

from apps.common.config_errors import format_errors
from apps.common.redis_settings import RedisSettings, tcp_keepalive_options
from apps.worker import metrics, pool_signals, quiet_logs, tasks
from apps.worker.runtime import RuntimeStep
from apps.worker.settings import WorkerSettings

#: kombu transport with a recoverable pop (see broker.py).
RELIABLE_TRANSPORT = "apps.worker.broker:Transport"


def url_with_credential(settings: RedisSettings) -> str:
    """Plain Celery (the benchmark's baseline) runs kombu's stock transport, which takes the
    credential only from the URL; ours never puts it there (apps/common/redis_settings.py)."""
    creds = settings.credentials()
    if creds is None:
        return settings.redis_url
    userinfo = ":".join(quote(part, safe="") for part in creds.get_credentials())
    scheme, rest = settings.redis_url.split("://", 1)
    return f"{scheme}://{userinfo if ':' in userinfo else ':' + userinfo}@{rest}"


def celery_config(settings: WorkerSettings, safe: bool = True) -> dict:
    """Celery settings. ``safe=False`` gives Celery's own delivery defaults (benchmark)."""
    transport_options: dict = {
        # One list per queue, named exactly CELERY_QUEUE (what KEDA's listName watches):
        # with the default steps [0, 3, 6, 9] a priority >0 goes to "<queue>\x06\x163" etc.
        "priority_steps": [0],
        # Every synchronous call the main loop makes on a broker connection (the sweep's lock,
        # the ack, kombu's checks) gives up on a dead socket within socket_timeout, so a path
        # that vanished silently costs seconds, not the liveness probe (docs/worker.md,
        # "Connections that vanish"). The pop keeps its own short BRPOP timeout.
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
        # kombu also drops a BRPOP connection that got no reply within brpop_timeout + this.
        "health_check_interval": 5,
        "socket_keepalive": True,
        "socket_keepalive_options": tcp_keepalive_options(),
        # The credential, read again on every new connection (apps/common/redis_settings.py).
        **settings.broker_transport_options(),
    }
    conf: dict = {
        "broker_url": settings.redis_url,
        "broker_use_ssl": settings.ssl_options(),
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": transport_options,
        "task_default_queue": settings.celery_queue,
        "task_default_exchange": settings.celery_queue,
        "task_default_routing_key": settings.celery_queue,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "worker_concurrency": settings.worker_concurrency,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_state_db": None,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        "worker_consumer": "apps.worker.consumer:WorkerConsumer",
        "worker_hijack_root_logger": True,
    }
    if safe:
        transport_options.update({
            "dead_letter_list": settings.dead_letter_queue,
            "dead_letter_max_length": settings.dead_letter_max_length,
            "dead_letter_max_entry_bytes": settings.dead_letter_max_entry_bytes,
            "visibility_timeout": settings.celery_visibility_timeout,
            # Sweep for abandoned (unacked) messages every restore_interval seconds and
            # scan Redis on every sweep (kombu's default: 10 s x throttle 10 = ~100 s).
            "unacked_restore_interval": settings.restore_interval,
            "unacked_restore_throttle": 1,
            # A worker killed inside a sweep holds the sweep mutex until it expires.
            "unacked_mutex_expire": max(5, min(300, int(settings.celery_visibility_timeout))),
        })
        conf.update({
            "broker_transport": RELIABLE_TRANSPORT,
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "task_acks_on_failure_or_timeout": True,  # failures are dead-lettered first
            "worker_prefetch_multiplier": 1,
            # On a broker connection loss running tasks finish (their Redis writes retry);
            # an ack that cannot reach Redis leaves the message in `unacked`, and the sweep
            # redelivers it after the visibility timeout: a duplicate, never a loss.
            "worker_cancel_long_running_tasks_on_connection_loss": False,
            # Prefetch is 1 per process: there is nothing to reduce after a reconnect (and
            # Celery would log that it skips it on every reconnect).
            "worker_enable_prefetch_count_reduction": False,
        })
    else:
        conf.update({"task_acks_late": False, "task_reject_on_worker_lost": False,
                     "worker_prefetch_multiplier": 4, "broker_url": url_with_credential(settings)})
    return conf


def build_app(settings: WorkerSettings, safe: bool = True, main: str = "worker") -> Celery:
    app = Celery(main, set_as_current=False, task_cls="apps.worker.task_requests:WorkerTask")
    app.conf.update(celery_config(settings, safe=safe))
    app.worker_settings = settings  # settings_of(app)
    tasks.register(app, settings, ack_in_write=safe)
    pool_signals.connect()
    metrics.wire()
    quiet_logs.install()
    app.steps["consumer"].add(RuntimeStep)
    return app


def load_settings() -> WorkerSettings:
    try:
        return WorkerSettings()
    except ValidationError as exc:
        # Only locations and messages: pydantic's own rendering echoes the input values,
        # which would include REDIS_PASSWORD.
        print(f"worker configuration error (refusing to start):\n{format_errors(exc)}", file=sys.stderr)
        raise SystemExit(2) from None


settings = load_settings()
app = build_app(settings)
