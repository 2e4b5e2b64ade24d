"""Cache API fixtures: a small generated dataset, settings pointing at a real redis-server,
in-process apps (httpx + ASGITransport, lifespan run for real) and real uvicorn processes."""

from __future__ import annotations

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
import redis
from fastapi import FastAPI

from apps.cache_api.generate_dataset import generate
from apps.cache_api.main import create_app
from apps.cache_api.settings import Settings
from tests.apps.redis_server import REDIS_SERVER, RedisServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
TEST_TAGS = ("python", "javascript", "typescript", "go", "rust")


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


@pytest.fixture
def uvicorn_factory() -> Iterator[Callable[..., UvicornProcess]]:
    """Start real ``uvicorn apps.cache_api.main:app`` processes; killed at teardown."""
    started: list[UvicornProcess] = []

    def start(env: dict[str, str], timeout: float = 15.0, access_log: bool = False) -> UvicornProcess:
        port = free_port()
        full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", **env}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "apps.cache_api.main:app", "--host", "127.0.0.1",
             "--port", str(port), *([] if access_log else ["--no-access-log"])],
            cwd=REPO_ROOT, env=full_env, stderr=subprocess.PIPE,
            stdout=subprocess.PIPE if access_log else subprocess.DEVNULL,  # uvicorn's access log: stdout
        )
        server = UvicornProcess(proc, port)
        started.append(server)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                detail = proc.stderr.read().decode() if proc.poll() is not None else "timeout"
                raise RuntimeError(f"uvicorn did not start: {detail}")
            time.sleep(0.1)

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        for stream in (server.proc.stdout, server.proc.stderr):
            if stream:
                stream.close()


@dataclass
class Replica:
    proc: subprocess.Popen
    port: int


@pytest.fixture
def replica_factory(tmp_path: Path) -> Iterator[Callable[[RedisServer], Replica]]:
    """A plain redis-server replicating from a (plain) primary, with the same password."""
    started: list[Replica] = []

    def start(primary: RedisServer) -> Replica:
        with primary.client() as c:  # the default waits 5 s for more replicas before a full sync
            c.config_set("repl-diskless-sync-delay", 0)
        port = free_port()
        workdir = tmp_path / f"replica-{port}"
        workdir.mkdir()
        proc = subprocess.Popen(
            [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--requirepass", primary.password, "--masterauth", primary.password,
             "--replicaof", "127.0.0.1", str(primary.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        replica = Replica(proc, port)
        started.append(replica)
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(host="127.0.0.1", port=port, password=primary.password, socket_timeout=1) as c:
                    if c.info("replication").get("master_link_status") == "up":
                        return replica
            except redis.RedisError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("replica did not sync")
            time.sleep(0.05)

    yield start
    for replica in started:
        replica.proc.terminate()
        replica.proc.wait(timeout=10)
