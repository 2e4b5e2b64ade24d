"""Settings from the environment, TLS that verifies, the read-replica path, no password in logs."""

from __future__ import annotations

import logging
import time

import pytest
import redis
from pydantic import ValidationError

from apps.cache_api.logs import LOGGER_NAME, JsonFormatter
from apps.cache_api.redis_clients import RedisClients
from apps.cache_api.settings import Settings
from tests.apps.cache_api.conftest import loads, serve, settings_for


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
    monkeypatch.setenv("REDIS_PASSWORD", "")  # empty = unset
    assert Settings().redis_password is None


@pytest.mark.parametrize("env", [
    {"CACHE_TTL_SECONDS": "-1"}, {"CACHE_TTL_SECONDS": "0"}, {"REDIS_TLS": "maybe"},
    {"REDIS_CA_FILE": "/no/such/ca.pem"}, {"REDIS_PORT": "70000"}, {"CACHE_TTL_JITTER_RATIO": "2"},
    {"LOG_LEVEL": "chatty"},
])
def test_bad_settings_fail_at_startup(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert next(iter(env)).lower() in str(info.value).lower()


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
        assert ready.status_code == 503 and "certificate" in ready.json()["detail"].lower()
        response = await client.get("/github_stats/python")
        assert response.status_code == 503 and response.json()["error"] == "redis_unavailable"
        assert loads(app) == 0


async def test_plain_client_against_tls_port_is_503_not_a_hang(redis_tls, sample_dataset):
    settings = settings_for(redis_tls, sample_dataset, redis_tls=False, redis_ca_file=None)
    async with serve(settings) as (_, client):
        assert (await client.get("/github_stats/python")).status_code == 503


async def test_wrong_password_is_503(redis_server, sample_dataset):
    settings = settings_for(redis_server, sample_dataset, redis_password="wrong")
    async with serve(settings) as (_, client):
        response = await client.get("/github_stats/python")
        assert response.status_code == 503 and response.json()["error"] == "redis_unavailable"


async def test_reads_go_to_the_replica_writes_and_lock_to_the_primary(redis_factory, replica_factory,
                                                                     sample_dataset):
    primary = redis_factory()
    replica = replica_factory(primary)
    settings = settings_for(primary, sample_dataset, redis_read_host="127.0.0.1", redis_read_port=replica.port,
                            local_cache_ttl_seconds=0)
    with primary.client() as p:
        p.config_resetstat()
    rep = redis.Redis(host="127.0.0.1", port=replica.port, password=primary.password)
    rep.config_resetstat()
    assert rep.config_get("replica-read-only") == {"replica-read-only": "yes"}
    try:
        async with serve(settings) as (app, client):
            assert (await client.get("/github_stats/go")).headers["x-cache"] == "fill"
            for _ in range(100):  # until the replica has the load
                if rep.exists(f"{settings.cache_key_prefix}:tag:go"):
                    break
                time.sleep(0.01)
            for _ in range(10):
                response = await client.get("/github_stats/go")
                assert response.status_code == 200 and response.headers["x-cache"] == "redis"
            assert (await client.get("/readyz")).status_code == 200
        with primary.client() as p:
            primary_stats = p.info("commandstats")
        replica_stats = rep.info("commandstats")
    finally:
        rep.close()
    assert replica_stats["cmdstat_get"]["calls"] >= 11  # the cold read and the 10 hot reads
    assert "cmdstat_get" not in primary_stats or primary_stats["cmdstat_get"]["calls"] <= 1  # lock release script
    assert primary_stats["cmdstat_set"]["calls"] >= 1  # lock and cache fill went to the primary
    # The replica is read-only: had the app written there (fill or lock), its request would have failed.
    assert loads(app) == 1


def test_password_never_logged(redis_server, sample_dataset):
    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(JsonFormatter())
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        import asyncio

        async def run() -> None:
            async with serve(settings_for(redis_server, sample_dataset, redis_password="hunter2-secret")) as (_, c):
                await c.get("/github_stats/python")  # wrong password: logs the redis error

        asyncio.run(run())
    finally:
        logger.removeHandler(handler)
    text = "\n".join(lines)
    assert "cache api starting" in text and "redis_password_set" in text
    assert "redis unavailable" in text
    assert "hunter2-secret" not in text


async def test_replica_down_reads_fall_back_to_the_primary(redis_factory, replica_factory, sample_dataset):
    primary = redis_factory()
    replica = replica_factory(primary)
    settings = settings_for(primary, sample_dataset, redis_read_host="127.0.0.1", redis_read_port=replica.port,
                            local_cache_ttl_seconds=0)
    async with serve(settings) as (app, client):
        assert (await client.get("/github_stats/rust")).status_code == 200
        replica.proc.terminate()
        replica.proc.wait(timeout=10)
        response = await client.get("/github_stats/rust")
        assert response.status_code == 200 and response.headers["x-cache"] == "redis"
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["replica"] == "unreachable"
        assert app.state.metrics.value("redis_read_fallbacks_total") >= 1
        assert loads(app) == 1
