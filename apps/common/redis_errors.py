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

A credential Redis refuses (``WRONGPASS``, ``NOAUTH``, redis-py's ``AuthenticationError``,
which is a ``ConnectionError``) is waited out too, and labelled ``auth``, never
``connection``: an access key replaced under a running fleet, or a token that expired, is
fixed by the new credential, which every process reads again on its next connection
(apps/common/redis_settings.py, ``RedisCredentials``), not by a restart.

Nothing else is: a ``WRONGTYPE`` or a syntax error is a bug, and stays an error.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import redis

try:
    from kombu.exceptions import OperationalError
except ImportError:  # the cache API's image has no kombu, and nothing there raises it
    class OperationalError(Exception):  # type: ignore[no-redef]
        """Stands for kombu's, which only the worker and producer images have."""

#: Replies that mean "not now": the server is up and will accept the command later.
REFUSED = (redis.exceptions.OutOfMemoryError, redis.exceptions.ReadOnlyError,
           redis.exceptions.BusyLoadingError, redis.exceptions.MasterDownError)

#: Everything a process waits out. kombu's ``OperationalError`` is kombu's own wrapper of
#: a connection error after its retries (``Connection.ensure_connection``, ``default_channel``).
UNAVAILABLE = (*REFUSED, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               socket.timeout, OSError, OperationalError)

#: What a probe, an API answer and the log say when Redis refuses the credential: the
#: problem and the fix, never the credential itself.
AUTH_SAYS = ("authentication failed: Redis refused the credential (check REDIS_PASSWORD, or the file "
             "REDIS_PASSWORD_FILE names: the redis-auth Secret; with REDIS_SIGN_IN=entra, the identity's federated "
             "credential, its access policy assignment and HTTPS to Entra ID; "
             "docs/redis-targets.md#rotating-the-access-key)")

#: Label values of the ``*_redis_unavailable_total{reason}`` metrics.
REASONS = ("auth", "oom", "readonly", "loading", "masterdown", "max_clients", "timeout", "connection")


@dataclass(frozen=True)
class Condition:
    """One way Redis can fail a client: its metric label (``None``: not a condition that
    passes, e.g. a command Redis refuses as wrong), and what a probe or an API answer says
    (never a host, port, password or other configured value)."""

    name: str
    label: str | None
    says: str
    matches: Callable[[list[BaseException], str], bool]


def _any(*types: type[BaseException]) -> Callable[[list[BaseException], str], bool]:
    return lambda chain, text: any(isinstance(e, types) for e in chain)


def _words(*words: str) -> Callable[[list[BaseException], str], bool]:
    return lambda chain, text: any(w in text for w in words)


def _either(*tests: Callable[[list[BaseException], str], bool]) -> Callable[[list[BaseException], str], bool]:
    return lambda chain, text: any(t(chain, text) for t in tests)


#: Every condition, in checking order: the first that matches is the one. The apps' metrics
#: label a failure with ``label`` (:func:`reason`), the cache API's probes and answers say
#: ``says`` (:func:`describe`), and its write refusals are the ``oom``/``readonly`` ones.
CONDITIONS: tuple[Condition, ...] = (
    Condition("auth", "auth", AUTH_SAYS, _either(
        _any(redis.exceptions.AuthenticationError),
        _words("wrongpass", "noauth", "invalid password", "invalid username-password"))),
    Condition("oom", "oom", "Redis is full (maxmemory reached) and refuses writes", _either(
        _any(redis.exceptions.OutOfMemoryError), _words("used memory > 'maxmemory'"))),
    Condition("readonly", "readonly", "Redis is a read-only replica (a failover in progress) and refuses writes",
              _either(_any(redis.exceptions.ReadOnlyError), _words("read only replica"))),
    Condition("loading", "loading", "Redis is loading its dataset (after a restart); retry shortly", _either(
        _any(redis.exceptions.BusyLoadingError), _words("loading the dataset"))),
    Condition("masterdown", "masterdown", "Redis is a replica that lost its primary; retry shortly", _either(
        _any(redis.exceptions.MasterDownError), _words("link with master is down"))),
    Condition("max_clients", "max_clients",
              "Redis refused the connection: max number of clients reached (its client limit)",
              _words("max number of clients reached")),
    Condition("tls_certificate", "connection", "TLS certificate verification failed (check REDIS_CA_FILE and "
              "the host name)", _either(_any(ssl.SSLCertVerificationError), _words("certificate"))),
    Condition("tls", "connection", "TLS handshake failed", _any(ssl.SSLError)),
    # Over TLS, Redis at maxclients closes the connection before the handshake: it cannot send
    # its error in clear text, so the client sees a reset (as in a restart or failover).
    Condition("reset", "connection", "connection reset by Redis (its client limit reached, or a restart or failover)",
              _any(ConnectionResetError)),
    Condition("refused", "connection", "connection refused", _either(_any(ConnectionRefusedError),
                                                                    _words("error 111 "))),
    Condition("dns", "connection", "host name not resolved (check REDIS_HOST)", _any(socket.gaierror)),
    Condition("timeout", "timeout", "timed out", _either(
        _any(redis.exceptions.TimeoutError, socket.timeout, TimeoutError), _words("timeout", "timed out"))),
    Condition("command", None, "Redis refused a command", _any(redis.exceptions.ResponseError)),
)


def _full_chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (redis-py wraps the socket's error)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _wrapped(exc: BaseException) -> BaseException:
    """kombu's ``OperationalError`` carries only the text of the error it wraps: the error
    itself, when kombu kept it as the cause."""
    cause = exc
    while isinstance(cause, OperationalError) and cause.__cause__ is not None:
        cause = cause.__cause__
    return cause


def condition(exc: BaseException, chain: list[BaseException] | None = None) -> Condition | None:
    """The first condition of :data:`CONDITIONS` that ``exc`` (or ``chain``) matches."""
    chain = chain if chain is not None else [exc]
    text = " ".join(str(e) for e in chain).lower()
    return next((c for c in CONDITIONS if c.matches(chain, text)), None)


def reason(exc: BaseException) -> str | None:
    """The metric label for ``exc``, or ``None`` when it is not a condition that passes.

    Only the error itself is read (through kombu's wrapper): a command refused as wrong
    while some earlier timeout was being handled is still a bug, not a timeout.
    """
    cause = _wrapped(exc)
    found = condition(cause)
    if found is not None and found.label is not None:
        return found.label
    return "connection" if isinstance(cause, UNAVAILABLE) else None


def describe(exc: BaseException) -> str:
    """What went wrong, for a probe or a client, read from the whole chain of causes."""
    found = condition(exc, _full_chain(exc))
    return found.says if found is not None else f"connection failed ({type(exc).__name__})"
