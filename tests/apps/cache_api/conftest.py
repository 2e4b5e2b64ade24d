"""Cache API fixtures: a small generated dataset, settings pointing at a real redis-server,
in-process apps (httpx + ASGITransport, lifespan run for real), real uvicorn processes and
real read replicas.

The read, stampede and outage tests take ``redis_any`` or ``redis_factory(profile=...)``
(tests/apps/conftest.py): they run once per Redis the stacks can give the API."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from apps.cache_api.generate_dataset import generate
from apps.cache_api.logs import LOGGER_NAME, JsonFormatter
from apps.cache_api.main import create_app
from apps.cache_api.settings import Settings
from tests.apps.images import dockerfile
from tests.apps.redis_profiles import PROFILE_NAMES
from tests.apps.redis_server import RedisServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
TEST_TAGS = ("python", "javascript", "typescript", "go", "rust")

#: For tests that start private servers: ``@pytest.mark.parametrize("profile", PROFILES)``.
PROFILES = PROFILE_NAMES


@pytest.fixture(scope="session")
def sample_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 tags x 20 repos, generated once (read-only for tests)."""
    out = tmp_path_factory.mktemp("dataset")
    generate(out, tags=len(TEST_TAGS), repos=20)
    return out


def settings_for(server: RedisServer, dataset_dir: Path, **overrides: object) -> Settings:
    """Settings for ``server`` (plain or TLS) with fast-failing timeouts; ``overrides`` win."""
    values: dict[str, object] = {
        "redis_host": "127.0.0.1",
        "redis_port": server.port,
        "redis_password": server.password,
        "redis_tls": server.tls is not None,
        "redis_ca_file": server.tls.ca if server.tls else None,
        "dataset_dir": dataset_dir,
        "redis_connect_timeout_seconds": 0.5,
        "redis_socket_timeout_seconds": 0.5,
        "lock_timeout_seconds": 5.0,
        "fill_wait_seconds": 8.0,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app with its lifespan running, and a client talking to it in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cache-api", timeout=30) as client:
            yield app, client


def loads(app: FastAPI) -> float:
    return app.state.metrics.value("dataset_loads_total")


@dataclass
class UvicornProcess:
    proc: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def image_server_flags() -> list[str]:
    """The server flags of the image's CMD (after ``--port 8000``): the tests' processes run
    with exactly what the pod runs."""
    argv = list(dockerfile.parse(REPO_ROOT / "apps" / "cache_api" / "Dockerfile", REPO_ROOT).cmd)
    return argv[argv.index("--port") + 2:]


class UvicornFactory:
    """Starts real ``uvicorn apps.cache_api.main:app`` processes, with the image's server
    flags; kills them at teardown."""

    def __init__(self) -> None:
        self.started: list[UvicornProcess] = []

    def __call__(self, env: dict[str, str], timeout: float = 15.0, access_log: bool = False) -> UvicornProcess:
        return self.many([env], timeout, access_log)[0]

    def many(self, envs: list[dict[str, str]], timeout: float = 15.0,
             access_log: bool = False) -> list[UvicornProcess]:
        """One process per env, started together (their imports overlap), each answering /healthz."""
        servers = [self._spawn(env, access_log) for env in envs]
        deadline = time.monotonic() + timeout
        for server in servers:
            self._wait_healthy(server, deadline)
        return servers

    def _spawn(self, env: dict[str, str], access_log: bool) -> UvicornProcess:
        port = free_port()
        full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", **env}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "apps.cache_api.main:app", "--host", "127.0.0.1",
             "--port", str(port), *image_server_flags(), *([] if access_log else ["--no-access-log"])],
            cwd=REPO_ROOT, env=full_env, stderr=subprocess.PIPE,
            stdout=subprocess.PIPE if access_log else subprocess.DEVNULL,  # uvicorn's access log: stdout
        )
        server = UvicornProcess(proc, port)
        self.started.append(server)
        return server

    @staticmethod
    def _wait_healthy(server: UvicornProcess, deadline: float) -> None:
        while True:
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if server.proc.poll() is not None or time.monotonic() > deadline:
                detail = server.proc.stderr.read().decode() if server.proc.poll() is not None else "timeout"
                raise RuntimeError(f"uvicorn did not start: {detail}")
            time.sleep(0.05)

    def cleanup(self) -> None:
        for server in self.started:
            if server.proc.poll() is None:
                server.proc.send_signal(signal.SIGKILL)
            server.proc.wait(timeout=10)
            for stream in (server.proc.stdout, server.proc.stderr):
                if stream:
                    stream.close()


@pytest.fixture
def uvicorn_factory() -> Iterator[UvicornFactory]:
    """``uvicorn_factory(env)``: one real uvicorn process; ``uvicorn_factory.many([env, ...])``: several at once."""
    factory = UvicornFactory()
    yield factory
    factory.cleanup()


@dataclass
class ReplicaServer(RedisServer):
    """A real ``redis-server --replicaof`` a plain primary (the ``replica-sidecar`` read path):
    same password, read-only, plain TCP for the app and a Unix socket for the harness.

    Not audited (``audit=None``): a replica's MONITOR also shows the primary's replication
    stream, which Redis 7 rewrites (``SET ... PX`` arrives as ``SET ... PXAT``), not what the
    app sent. The app only sends it ``GET`` and ``PING``, which the primary's audit covers.
    """

    primary_port: int = 0
    audit: None = None

    def config_lines(self) -> list[str]:
        return super().config_lines() + [f"replicaof 127.0.0.1 {self.primary_port}",
                                         f"masterauth {self.password}", "replica-read-only yes"]

    def start(self, timeout: float = 10.0) -> ReplicaServer:
        super().start(timeout)
        deadline = time.monotonic() + timeout
        with self.client(socket_timeout=1) as c:
            while c.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("replica did not sync")
                time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL, as when the sidecar container dies."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def replica_factory(tmp_path: Path) -> Iterator[Callable[[RedisServer], ReplicaServer]]:
    """``replica_factory(primary)``: a synced replica of a plain (``local``) primary."""
    started: list[ReplicaServer] = []

    def start(primary: RedisServer) -> ReplicaServer:
        assert primary.tls is None, "the replica sidecar exists only with the in-cluster (plain) Redis"
        with primary.client() as c:  # the default waits 5 s for more replicas before a full sync
            c.config_set("repl-diskless-sync-delay", 0)
        replica = ReplicaServer(workdir=tmp_path / f"replica-{len(started)}", password=primary.password,
                                primary_port=primary.port)
        started.append(replica)
        return replica.start()

    yield start
    for replica in started:
        replica.cleanup()


@pytest.fixture
def log_lines():
    """Formatted JSON lines our logger writes during the test."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(JsonFormatter())
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    yield lines
    logger.removeHandler(handler)
