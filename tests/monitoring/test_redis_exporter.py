"""redis_exporter, configured exactly as the rendered Deployment configures it, against a
real redis-server in each server profile the stacks can give (tests/apps/redis_profiles.py):
``local`` (plain, password), ``azure-cache`` and ``azure-managed`` (TLS only, password,
Azure's admin commands such as CONFIG disabled; azure-cache also without anything newer
than Redis 6.0). Debian's binary (1.45) reads the same environment variables as the pinned
image (components/versions.py)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from tests.apps.command_audit import CommandAudit
from tests.apps.redis_profiles import PROFILES
from tests.apps.redis_server import PASSWORD, RedisServer, TlsFiles
from tests.infra.validation.manifests import container_env, find
from tests.monitoring.processes import RedisExporterProcess
from tests.monitoring.tools import require_tool
from tools.render import render_stack


@functools.cache
def rendered_env(stack: str) -> dict[str, str]:
    """The exporter container's literal env in the rendered stack (the password is a secretKeyRef)."""
    dep = find(render_stack(stack).k8s_objects, "Deployment", "platform", "redis-exporter")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return {k: e["value"] for k, e in container_env(container).items() if "value" in e}


def exporter_env(stack: str, server: RedisServer, password: str = PASSWORD) -> dict[str, str]:
    env = dict(rendered_env(stack))
    scheme = env["REDIS_ADDR"].split("://")[0]
    assert scheme == ("rediss" if server.tls else "redis"), env["REDIS_ADDR"]
    # The same scheme and settings, pointed at the test server (TLS: its name is in the certificate).
    env["REDIS_ADDR"] = f"{scheme}://{'localhost' if server.tls else '127.0.0.1'}:{server.port}"
    env["REDIS_PASSWORD"] = password  # in the cluster: secretKeyRef redis-auth/password
    if server.tls:  # Azure's certificates chain to public roots (in the image); ours to a test CA
        env["REDIS_EXPORTER_TLS_CA_CERT_FILE"] = str(server.tls.ca)
    return env


@pytest.fixture(scope="module")
def binary() -> str:
    return require_tool("redis_exporter")


def _fill_queue(server: RedisServer) -> None:
    with server.client() as c:
        c.rpush("celery", *[f"task-{i}" for i in range(7)])
        c.rpush("celery.dead_letter", "bad-1", "bad-2")
        c.hset("unacked", mapping={"tag-1": "x", "tag-2": "y", "tag-3": "z"})
        # celery.inflight absent: reported as 0 (an empty list does not exist in Redis)


def scrape(binary: str, env: dict[str, str], tmp_path: Path, times: int = 1) -> dict[str, float]:
    """Start the exporter with ``env``, scrape it ``times`` times, stop it: the last samples."""
    exporter = RedisExporterProcess(binary, env, tmp_path).start()
    try:
        for _ in range(times):
            samples = exporter.samples()
    finally:
        exporter.stop()
    return samples


def _sizes(samples: dict[str, float]) -> dict[str, float]:
    return {k.split('key="')[1].split('"')[0]: v for k, v in samples.items() if k.startswith("redis_key_size{")}


def test_plain_in_cluster_redis(binary, redis_server, tmp_path):
    _fill_queue(redis_server)
    samples = scrape(binary, exporter_env("local", redis_server), tmp_path)
    assert samples["redis_up"] == 1
    assert _sizes(samples) == {"celery": 7, "celery.inflight": 0, "celery.dead_letter": 2, "unacked": 3}
    assert samples["redis_memory_used_bytes"] > 0 and samples["redis_connected_clients"] >= 1


@pytest.fixture(params=["azure-cache", "azure-managed"])
def azure_redis(request, tmp_path: Path, tls_files: TlsFiles):
    """A server of an Azure profile, with its own command audit: what the exporter sent."""
    server = RedisServer(workdir=tmp_path / f"redis-{request.param}", tls=tls_files,
                         profile=PROFILES[request.param], audit=CommandAudit()).start()
    yield server
    server.cleanup()


def test_azure_profiles_tls_password_no_admin_commands(binary, azure_redis, tmp_path):
    with azure_redis.client() as c:
        with pytest.raises(Exception, match="unknown command"):
            c.execute_command("CONFIG", "GET", "maxmemory")
    _fill_queue(azure_redis)
    samples = scrape(binary, exporter_env("aks", azure_redis), tmp_path, times=3)
    assert samples["redis_up"] == 1
    assert _sizes(samples) == {"celery": 7, "celery.inflight": 0, "celery.dead_letter": 2, "unacked": 3}
    sent = azure_redis.audit.commands()
    assert {"INFO", "LLEN", "HLEN"} <= sent, sent  # the audit saw the exporter's commands
    assert azure_redis.audit.violations() == []  # none newer than Redis 6.0


def _config_calls(server: RedisServer) -> int:
    """CONFIG calls Redis refused (the default user may not run it)."""
    with server.client() as c:
        stats = c.info("commandstats")
    return sum(int(v.get("rejected_calls", 0)) + int(v.get("calls", 0))
               for k, v in stats.items() if k.startswith("cmdstat_config"))


@pytest.fixture
def config_denied(tmp_path: Path, tls_files: TlsFiles):
    """TLS + password, CONFIG refused through ACL rather than renamed away: a refused call is
    counted (``rejected_calls``), so the test can see whether the exporter sends one."""
    server = RedisServer(workdir=tmp_path / "redis-config-denied", tls=tls_files, audit=None).start()
    with server.client() as c:
        c.execute_command("ACL", "SETUSER", "default", "-config")
    yield server
    server.cleanup()


def test_the_exporter_never_calls_config(binary, config_denied, tmp_path):
    _fill_queue(config_denied)
    samples = scrape(binary, exporter_env("aks", config_denied), tmp_path, times=3)
    assert samples["redis_up"] == 1
    assert _config_calls(config_denied) == 0  # REDIS_EXPORTER_CONFIG_COMMAND=-
    # (without it the exporter calls CONFIG GET on every scrape, and Azure refuses it)
    calls_config = {**exporter_env("aks", config_denied), "REDIS_EXPORTER_CONFIG_COMMAND": "CONFIG"}
    scrape(binary, calls_config, tmp_path)
    assert _config_calls(config_denied) >= 1


def test_tls_is_verified_and_the_password_required(binary, azure_redis, tmp_path):
    no_ca = exporter_env("aks", azure_redis)
    del no_ca["REDIS_EXPORTER_TLS_CA_CERT_FILE"]
    wrong_password = exporter_env("aks", azure_redis, password="not-the-password")
    for env in (no_ca, wrong_password):
        assert scrape(binary, env, tmp_path)["redis_up"] == 0


def test_the_rendered_env_is_what_these_tests_rely_on():
    local, aks = rendered_env("local"), rendered_env("aks")
    assert local["REDIS_ADDR"].startswith("redis://") and aks["REDIS_ADDR"].startswith("rediss://")
    for env in (local, aks):
        assert env["REDIS_EXPORTER_CONFIG_COMMAND"] == "-"
        assert env["REDIS_EXPORTER_CHECK_SINGLE_KEYS"] == "db0=celery,db0=celery.inflight,db0=celery.dead_letter,db0=unacked"


@pytest.mark.parametrize("profile", list(PROFILES))
def test_the_series_the_limit_alerts_use_exist_on_every_profile(binary, redis_factory, tmp_path, profile):
    """RedisMemoryNearLimit, RedisRefusesWrites, RedisClientsNearLimit, RedisRejectedConnections
    and the dashboard's limit panels read these, without CONFIG. A connection Redis turned
    away at maxclients shows in redis_rejected_connections_total."""
    from tests.apps.redis_fill import close_all, fill_clients

    server = redis_factory(profile=profile, settings={"maxmemory": "8mb", "maxmemory-policy": "noeviction",
                                                      "maxclients": "20"})
    env = exporter_env("local" if profile == "local" else "aks", server)
    before = scrape(binary, env, tmp_path / "before")
    for name in ("redis_memory_used_bytes", "redis_memory_max_bytes", "redis_connected_clients",
                 "redis_rejected_connections_total"):
        assert name in before, name
    assert before["redis_memory_max_bytes"] == 8 * 1024 * 1024  # INFO's maxmemory (Azure Managed Redis: absent)
    assert before["redis_rejected_connections_total"] == 0
    held = fill_clients(server)
    try:
        close_all(held[:1])  # one slot for the exporter's own connection
        after = scrape(binary, env, tmp_path / "after")
    finally:
        close_all(held)
    assert after["redis_up"] == 1
    assert after["redis_rejected_connections_total"] >= 1
    assert after["redis_connected_clients"] >= 19
