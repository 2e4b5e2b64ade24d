"""Fixtures: real redis-server processes (plain and TLS), started and stopped by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apps.redis_server import RedisServer, TlsFiles, make_tls_files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def redis_plain(tmp_path_factory: pytest.TempPathFactory):
    """One plain-TCP server for the session; tests get it flushed (see ``redis_server``)."""
    server = RedisServer(workdir=tmp_path_factory.mktemp("redis-plain")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(redis_plain: RedisServer) -> RedisServer:
    """The session's plain server, emptied before the test."""
    if redis_plain.proc is None or redis_plain.proc.poll() is not None:
        redis_plain.start()
    with redis_plain.client() as c:
        c.flushall()
    return redis_plain


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles):
    server = RedisServer(workdir=tmp_path_factory.mktemp("redis-tls"), tls=tls_files).start()
    yield server
    server.stop()


@pytest.fixture
def redis_factory(tmp_path: Path):
    """Start private servers a test may stop and restart (chaos tests)."""
    servers: list[RedisServer] = []

    def make(tls: TlsFiles | None = None) -> RedisServer:
        server = RedisServer(workdir=tmp_path / f"redis-{len(servers)}", tls=tls).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
