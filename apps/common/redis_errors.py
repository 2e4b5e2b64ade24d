"""Which Redis errors are conditions that pass, and what to call each (a metric label).

A full, restarting, failing-over or crowded Redis answers in ways that redis-py and kombu
do not treat as connection problems: ``OOM`` (``maxmemory`` reached with ``noeviction``),
``READONLY`` (a replica, during a failover), ``LOADING`` (a restart reading its data
back), ``MASTERDOWN`` (a replica that lost its primary). They are replies, so the
connection is fine and a blind reconnect does not help: the client has to wait and try
again. Together with real connection problems (reset, refused, timeout, and
``max number of clients reached``, which redis-py raises as a ``ConnectionError``) these
are what every long-running process of the worker and producer waits out instead of
dying on (docs/worker.md, "At Redis's limits").

Nothing else is: a ``WRONGTYPE`` or a syntax error is a bug, and stays an error.
"""

from __future__ import annotations

import socket

import redis
from kombu.exceptions import OperationalError

#: Replies that mean "not now": the server is up and will accept the command later.
REFUSED = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError,
           redis.exceptions.BusyLoadingError, redis.exceptions.MasterDownError)

#: Everything a process waits out. kombu's ``OperationalError`` is kombu's own wrapper of
#: a connection error after its retries (``Connection.ensure_connection``, ``default_channel``).
UNAVAILABLE = (*REFUSED, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               socket.timeout, OSError, OperationalError)

#: Label values of the ``*_redis_unavailable_total{reason}`` metrics, in checking order.
REASONS = ("oom", "readonly", "loading", "masterdown", "max_clients", "timeout", "connection")


def reason(exc: BaseException) -> str | None:
    """The label for ``exc``, or ``None`` when it is not a condition that passes.

    kombu's ``OperationalError`` carries only the text of the error it wraps; the text
    of a server reply (``max number of clients reached``, ``OOM ...``) is what tells them apart.
    """
    cause = exc
    while isinstance(cause, OperationalError) and cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause).lower()
    if isinstance(cause, redis.exceptions.OutOfMemoryError) or "used memory > 'maxmemory'" in text:
        return "oom"
    if isinstance(cause, redis.exceptions.ReadOnlyError) or "read only replica" in text:
        return "readonly"
    if isinstance(cause, redis.exceptions.BusyLoadingError) or "loading the dataset" in text:
        return "loading"
    if isinstance(cause, redis.exceptions.MasterDownError) or "link with master is down" in text:
        return "masterdown"
    if "max number of clients reached" in text:
        return "max_clients"
    if isinstance(cause, (redis.exceptions.TimeoutError, socket.timeout)) or "timed out" in text:
        return "timeout"
    if isinstance(cause, UNAVAILABLE):
        return "connection"
    return None
