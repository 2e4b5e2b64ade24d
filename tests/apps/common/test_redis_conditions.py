"""The platform's one table of Redis conditions (apps/common/redis_errors.py): what each
failure is labelled in the apps' metrics (``reason``), what the cache API's probes and answers
say (``describe``), and that a wrapped socket error is read through redis-py's wrapper."""

from __future__ import annotations

import socket
import ssl

import pytest
import redis
from kombu.exceptions import OperationalError

from apps.cache_api.write_refusals import refusal
from apps.common.redis_errors import CONDITIONS, REASONS, describe, reason


def _wrapped(inner: BaseException, outer: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as e:
            raise outer from e
    except BaseException as e:
        return e


E = redis.exceptions
CASES = [
    (E.AuthenticationError("invalid username-password pair"), "auth", "authentication failed"),
    (E.AuthenticationError("WRONGPASS invalid username-password pair or user is disabled."), "auth",
     "check REDIS_PASSWORD, or the file REDIS_PASSWORD_FILE names"),
    (E.AuthenticationError("Authentication required."), "auth", "Redis refused the credential"),
    (E.ResponseError("NOAUTH Authentication required."), "auth", "authentication failed"),
    (OperationalError("invalid username-password pair or user is disabled."), "auth", "authentication failed"),
    (E.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "oom", "Redis is full"),
    (E.ReadOnlyError("You can't write against a read only replica."), "readonly", "read-only replica"),
    (E.BusyLoadingError("Redis is loading the dataset in memory"), "loading", "loading its dataset"),
    (E.MasterDownError("Link with MASTER is down"), "masterdown", "lost its primary"),
    (E.ConnectionError("max number of clients reached"), "max_clients", "max number of clients reached"),
    (_wrapped(ssl.SSLCertVerificationError("certificate verify failed"), E.ConnectionError("x")), "connection",
     "TLS certificate verification failed"),
    (_wrapped(ConnectionResetError(104, "reset"), E.ConnectionError("Error 104 while reading")), "connection",
     "connection reset by Redis"),
    (_wrapped(ConnectionRefusedError(111, "refused"), E.ConnectionError("Error 111 connecting to h:1. refused.")),
     "connection", "connection refused"),
    (_wrapped(socket.gaierror(-2, "Name or service not known"), E.ConnectionError("Error -2 connecting")),
     "connection", "host name not resolved (check REDIS_HOST)"),
    (E.TimeoutError("Timeout reading from socket"), "timeout", "timed out"),
    (E.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), None,
     "Redis refused a command"),
]


@pytest.mark.parametrize("exc, label, says", CASES, ids=[type(c[0]).__name__ + "-" + str(i) for i, c in enumerate(CASES)])
def test_each_condition_has_one_label_and_one_message(exc, label, says):
    assert reason(exc) == label
    assert says in describe(exc)
    assert "h:1" not in describe(exc)  # never the address


def test_a_refused_credential_is_auth_not_connection():
    """redis-py's AuthenticationError is a ConnectionError: it must still say ``auth``, raw, wrapped
    by kombu (with or without its cause), and never echo the credential it was given."""
    for exc in (E.AuthenticationError("invalid username-password pair or user is disabled."),
                _wrapped(E.AuthenticationError("invalid password"), OperationalError("invalid password"))):
        assert reason(exc) == "auth" and "auth" in REASONS
        assert describe(exc).startswith("authentication failed")
    assert "s3cret" not in describe(E.AuthenticationError("invalid password"))


def test_kombus_wrapper_is_read_through():
    exc = _wrapped(E.OutOfMemoryError("OOM command not allowed"), OperationalError("OOM command not allowed"))
    assert reason(exc) == "oom"


def test_the_write_refusals_are_the_tables_oom_and_readonly():
    assert refusal(E.OutOfMemoryError("x")) == "oom" and refusal(E.ReadOnlyError("x")) == "readonly"
    assert refusal(E.TimeoutError("x")) is None and refusal(E.ResponseError("WRONGTYPE")) is None


def test_every_label_is_a_metric_label():
    assert {c.label for c in CONDITIONS if c.label is not None} <= set(REASONS)
