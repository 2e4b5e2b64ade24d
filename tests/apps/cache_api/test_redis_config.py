"""Settings from the environment (errors that name the variable, never its value; empty means
unset), TLS that verifies, probe details without host, port or password, the read-replica path
(the replica killed and back), no password in logs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from apps.cache_api.redis_clients import RedisClients
from apps.cache_api.settings import Settings, SettingsError, load_settings
from apps.common.redis_errors import AUTH_SAYS
from tests.apps.cache_api.conftest import REPO_ROOT, loads, serve, settings_for


def test_settings_read_the_contract_env_names(monkeypatch, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {
        "REDIS_HOST": "redis.example", "REDIS_PORT": "6380", "REDIS_PASSWORD": "s3cret", "REDIS_TLS": "true",
        "REDIS_DB": "2", "REDIS_CA_FILE": str(ca), "DATASET_DIR": str(tmp_path), "CACHE_TTL_SECONDS": "60",
        "REDIS_READ_HOST": "127.0.0.1", "LOCAL_CACHE_TTL_SECONDS": "0.5",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert (s.redis_host, s.redis_port, s.redis_tls, s.redis_db) == ("redis.example", 6380, True, 2)
    assert s.redis_password.get_secret_value() == "s3cret" and "s3cret" not in repr(s)
    assert s.redis_ca_file == ca and s.dataset_dir == tmp_path
    assert s.cache_ttl_seconds == 60 and s.local_cache_ttl_seconds == 0.5
    assert (s.redis_read_host, s.redis_read_port) == ("127.0.0.1", 6380)  # read port defaults to REDIS_PORT


BAD_ENV = [
    {"CACHE_TTL_SECONDS": "-7"}, {"CACHE_TTL_SECONDS": "0.000"}, {"REDIS_TLS": "maybe-s3cret"},
    {"REDIS_CA_FILE": "/no/such/s3cret-ca.pem"}, {"REDIS_PORT": "70000"}, {"CACHE_TTL_JITTER_RATIO": "2"},
    {"LOG_LEVEL": "chatty-s3cret"}, {"DATASET_RETRY_SECONDS": "-3.5"},
    {"DATASET_LOAD_TIMEOUT_SECONDS": "12.5", "LOCK_TIMEOUT_SECONDS": "12.5"},
]


@pytest.mark.parametrize("env", BAD_ENV, ids=lambda env: next(iter(env)))
def test_bad_settings_fail_at_startup_naming_the_variable_not_the_value(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert next(iter(env)) in message
    for value in env.values():
        assert value not in message, message


def test_empty_variables_mean_unset(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.setenv(name.upper(), "")
    assert Settings() == Settings.model_construct(**{n: f.get_default(call_default_factory=True)
                                                     for n, f in Settings.model_fields.items()})
    assert load_settings().redis_password is None and load_settings().redis_read_port is None


def test_a_real_uvicorn_refuses_a_bad_environment_without_echoing_it():
    env = {"PATH": os.environ.get("PATH", ""), "REDIS_PORT": "70000", "REDIS_TLS": "maybe-s3cret",
           "REDIS_PASSWORD": "hunter2-s3cret"}
    proc = subprocess.run([sys.executable, "-m", "uvicorn", "apps.cache_api.main:app", "--port", "0"],
                          cwd=REPO_ROOT, env=env, capture_output=True, timeout=30)
    output = (proc.stdout + proc.stderr).decode()
    assert proc.returncode != 0
    assert "invalid cache API environment: REDIS_PORT:" in output and "REDIS_TLS:" in output
    assert "70000" not in output and "s3cret" not in output


async def test_tls_with_the_ca_verifies_and_serves(redis_tls, sample_dataset):
    with redis_tls.client() as c:
        c.flushall()
    settings = settings_for(redis_tls, sample_dataset)
    clients = RedisClients.from_settings(settings)
    kwargs = clients.primary.connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_check_hostname"] is True
    await clients.aclose()
    async with serve(settings) as (app, client):
        assert (await client.get("/readyz")).status_code == 200
        response = await client.get("/github_stats/python")
        assert response.status_code == 200 and len(response.json()) == 20
        assert loads(app) == 1


async def test_tls_without_the_ca_fails_verification_with_503(redis_tls, sample_dataset):
    # No REDIS_CA_FILE: the system trust store does not know the test CA, so the handshake fails.
    settings = settings_for(redis_tls, sample_dataset, redis_ca_file=None)
    async with serve(settings) as (app, client):
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["detail"] == (
            "TLS certificate verification failed (check REDIS_CA_FILE and the host name)")
        response = await client.get("/github_stats/python")
        assert response.status_code == 503 and response.json()["error"] == "redis_unavailable"
        assert loads(app) == 0


async def test_plain_client_against_tls_port_is_503_not_a_hang(redis_tls, sample_dataset):
    settings = settings_for(redis_tls, sample_dataset, redis_tls=False, redis_ca_file=None)
    async with serve(settings) as (_, client):
        assert (await client.get("/github_stats/python")).status_code == 503


async def test_wrong_password_is_503_and_the_probe_says_why_without_echo(redis_server, sample_dataset):
    settings = settings_for(redis_server, sample_dataset, redis_password="wrong-s3cret")
    async with serve(settings) as (_, client):
        response = await client.get("/github_stats/python")
        assert response.status_code == 503 and response.json()["error"] == "redis_unavailable"
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"error": "redis_unavailable", "status": "unready",
                                "detail": AUTH_SAYS}
        assert "s3cret" not in ready.text


async def test_probe_detail_names_no_host_or_port(redis_factory, sample_dataset):
    server = redis_factory()
    async with serve(settings_for(server, sample_dataset)) as (_, client):
        server.stop()
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["detail"] == "connection refused"
        assert str(server.port) not in ready.text and "127.0.0.1" not in ready.text


def _gets(server) -> int:
    with server.client() as c:
        return c.info("commandstats").get("cmdstat_get", {}).get("calls", 0)


def _replica_settings(primary, replica, dataset):
    return settings_for(primary, dataset, redis_read_host="127.0.0.1", redis_read_port=replica.port,
                        local_cache_ttl_seconds=0)


async def _until_replicated(replica, key: str) -> None:
    with replica.client() as rep:
        for _ in range(200):
            if rep.exists(key):
                return
            time.sleep(0.01)
    raise AssertionError(f"{key} never reached the replica")


async def test_reads_go_to_the_replica_writes_and_lock_to_the_primary(redis_factory, replica_factory,
                                                                     sample_dataset):
    primary = redis_factory()
    replica = replica_factory(primary)
    settings = _replica_settings(primary, replica, sample_dataset)
    with replica.client() as rep:
        assert rep.config_get("replica-read-only") == {"replica-read-only": "yes"}
    async with serve(settings) as (app, client):
        primary_gets, replica_gets = _gets(primary), _gets(replica)
        assert (await client.get("/github_stats/go")).headers["x-cache"] == "fill"
        await _until_replicated(replica, f"{settings.cache_key_prefix}:tag:go")
        for _ in range(10):
            response = await client.get("/github_stats/go")
            assert response.status_code == 200 and response.headers["x-cache"] == "redis"
        assert (await client.get("/readyz")).status_code == 200
    with primary.client() as p:
        primary_stats = p.info("commandstats")
    assert _gets(replica) - replica_gets >= 11  # the cold read and the 10 hot reads
    assert _gets(primary) - primary_gets <= 1  # only the lock release script's GET
    assert primary_stats["cmdstat_set"]["calls"] >= 1  # lock and cache fill went to the primary
    # The replica is read-only: had the app written there (fill or lock), its request would have failed.
    assert loads(app) == 1


def test_password_never_logged(redis_server, sample_dataset, log_lines):
    import asyncio

    async def run() -> None:
        async with serve(settings_for(redis_server, sample_dataset, redis_password="hunter2-secret")) as (_, c):
            await c.get("/github_stats/python")  # wrong password: logs the redis error

    asyncio.run(run())
    lines = log_lines
    text = "\n".join(lines)
    assert "cache api starting" in text and "redis_password_set" in text
    assert "redis unavailable" in text
    assert "hunter2-secret" not in text


async def test_replica_killed_reads_fall_back_to_the_primary_and_return_when_it_is_back(
        redis_factory, replica_factory, sample_dataset):
    """The ``replica-sidecar`` promise: a dead replica does not take the pod out of service."""
    primary = redis_factory()
    replica = replica_factory(primary)
    settings = _replica_settings(primary, replica, sample_dataset)
    async with serve(settings) as (app, client):
        fallbacks = lambda: app.state.metrics.value("redis_read_fallbacks_total")  # noqa: E731
        assert (await client.get("/github_stats/rust")).status_code == 200
        await _until_replicated(replica, f"{settings.cache_key_prefix}:tag:rust")

        replica.kill()
        primary_gets = _gets(primary)
        for _ in range(20):
            response = await client.get("/github_stats/rust")
            assert response.status_code == 200 and response.headers["x-cache"] == "redis"
        assert _gets(primary) - primary_gets >= 20  # answered by the primary
        assert fallbacks() >= 20
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "replica": "unreachable", "detail": "connection refused"}

        replica.start()  # the sidecar restarts (same port) and syncs again
        await _until_replicated(replica, f"{settings.cache_key_prefix}:tag:rust")
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        before = fallbacks(), _gets(replica), _gets(primary)
        for _ in range(20):
            response = await client.get("/github_stats/rust")
            assert response.status_code == 200 and response.headers["x-cache"] == "redis"
        assert fallbacks() == before[0], "reads went back to the replica"
        assert _gets(replica) - before[1] >= 20
        assert _gets(primary) - before[2] == 0
        assert loads(app) == 1


async def test_a_hung_replica_does_not_make_the_probe_outlast_its_timeout(redis_factory, replica_factory,
                                                                          sample_dataset):
    primary = redis_factory()
    replica = replica_factory(primary)
    async with serve(_replica_settings(primary, replica, sample_dataset)) as (_, client):
        assert (await client.get("/github_stats/go")).status_code == 200
        os.kill(replica.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            ready = await client.get("/readyz")
            took = time.monotonic() - started
            assert ready.status_code == 200
            assert ready.json() == {"status": "ready", "replica": "unreachable", "detail": "timed out"}
            assert took < 1.0, took  # the kubelet's default probe timeout
            assert (await client.get("/github_stats/go")).status_code == 200  # slower, from the primary
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)
        assert (await client.get("/readyz")).json() == {"status": "ready"}


def test_a_bad_environment_is_one_line_under_uvicorn_not_a_traceback():
    """The image's command (uvicorn apps.cache_api.main:app): exit 2 with one line naming the
    variable, never its value (it printed a 44-line traceback)."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT), "REDIS_HOST": "localhost",
           "REDIS_PORT": "notaport", "REDIS_PASSWORD": "s3cret-not-printed"}
    out = subprocess.run([sys.executable, "-m", "uvicorn", "apps.cache_api.main:app", "--port", "0"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cache-api: invalid cache API environment: REDIS_PORT"), lines
    assert "s3cret" not in out.stderr and "Traceback" not in out.stderr
