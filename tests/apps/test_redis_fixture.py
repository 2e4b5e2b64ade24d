"""The fixture itself: a real server, plain and TLS, with verification that can fail."""

import pytest
import redis


def test_plain_server_round_trip(redis_server):
    with redis_server.client() as c:
        c.set("k", "v")
        assert c.get("k") == b"v"


def test_tls_server_verifies_certificate(redis_tls):
    with redis_tls.client() as c:
        assert c.ping() is True
    # Without the CA the handshake must fail: verification is really on.
    bad = redis.Redis(host="127.0.0.1", port=redis_tls.port, password=redis_tls.password,
                      ssl=True, ssl_cert_reqs="required", socket_timeout=2)
    with pytest.raises(redis.ConnectionError):
        bad.ping()
