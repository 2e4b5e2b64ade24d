"""Fixtures: real redis-server processes, started and stopped by the tests.

- ``redis_server``: the session's plain server (profile ``local``), flushed per test;
- ``redis_tls``: a TLS-only server with no other restriction;
- ``redis_any``: parametrized over every server profile (``local``, ``azure-cache``,
  ``azure-managed``; tests/apps/redis_profiles.py), one server per profile per session,
  flushed per test: a test that takes it runs once per Redis the stacks can give;
- ``redis_factory(profile=..., tls=...)``: private servers a test may stop and restart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.apps.redis_profiles import PROFILE_NAMES, PROFILES
from tests.apps.redis_server import RedisServer, TlsFiles, make_tls_files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def _fresh(server: RedisServer) -> RedisServer:
    if server.proc is None or server.proc.poll() is not None:
        server.start()
    with server.client() as c:
        c.flushall()
    return server


@pytest.fixture(scope="session")
def redis_plain(tmp_path_factory: pytest.TempPathFactory):
    """One plain-TCP server for the session (profile ``local``); tests get it flushed."""
    server = RedisServer(workdir=tmp_path_factory.mktemp("redis-plain")).start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_server(redis_plain: RedisServer) -> RedisServer:
    """The session's plain server, emptied before the test."""
    return _fresh(redis_plain)


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles):
    server = RedisServer(workdir=tmp_path_factory.mktemp("redis-tls"), tls=tls_files).start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session", params=PROFILE_NAMES)
def redis_profile(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  tls_files: TlsFiles):
    """One server per profile for the session (``local`` is the plain session server)."""
    profile = PROFILES[request.param]
    if profile.name == "local":
        yield request.getfixturevalue("redis_plain")
        return
    server = RedisServer(workdir=tmp_path_factory.mktemp(f"redis-{profile.name}"), tls=tls_files,
                         profile=profile).start()
    yield server
    server.cleanup()


@pytest.fixture
def redis_any(redis_profile: RedisServer) -> RedisServer:
    """The profile's session server, emptied before the test."""
    return _fresh(redis_profile)


@pytest.fixture
def redis_factory(tmp_path: Path, tls_files: TlsFiles):
    """Start private servers a test may stop and restart (chaos tests):
    ``redis_factory()`` plain, ``redis_factory(tls=tls_files)``, ``redis_factory(profile="azure-cache")``,
    ``redis_factory(settings={"maxmemory": "8mb", "maxmemory-policy": "noeviction"})`` (redis.conf
    directives given at start, on every profile: the azure ones refuse CONFIG SET);
    ``admin_alias="x-"`` keeps the profile's refused admin commands for the harness
    (``server.admin("ACL", ...)``: credential rotation)."""
    servers: list[RedisServer] = []

    def make(tls: TlsFiles | None = None, profile: str = "local",
             settings: dict[str, str] | None = None, admin_alias: str | None = None) -> RedisServer:
        chosen = PROFILES[profile]
        server = RedisServer(workdir=tmp_path / f"redis-{len(servers)}",
                             tls=tls or (tls_files if chosen.tls else None), profile=chosen,
                             settings=dict(settings or {}), admin_alias=admin_alias).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.cleanup()
