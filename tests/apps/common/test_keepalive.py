"""TCP keepalive on the platform's Redis sockets: set on the real socket,
for redis-py clients and for the worker's and producer's broker connections."""

from __future__ import annotations

import os
import socket
from unittest import mock

import redis

from apps.common.redis_settings import TCP_KEEPALIVE, tcp_keepalive_options
from apps.worker.celery_app import celery_config
from apps.worker.settings import WorkerSettings
from tests.apps.worker.helpers import clean_env


def _opt(sock: socket.socket, name: str) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, name))


def test_a_client_from_the_settings_keeps_its_socket_alive(redis_server):
    with mock.patch.dict(os.environ, clean_env(**redis_server.env), clear=True):
        settings = WorkerSettings()
    client = redis.Redis(**settings.redis_client_kwargs())
    try:
        assert client.ping()
        conn = client.connection_pool.get_connection()
        try:
            sock = conn._sock
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            for name, value in TCP_KEEPALIVE.items():
                if hasattr(socket, name):
                    assert _opt(sock, name) == value, name
        finally:
            client.connection_pool.release(conn)
    finally:
        client.close()


def test_the_worker_broker_connection_asks_for_short_timeouts_and_keepalive(redis_server):
    with mock.patch.dict(os.environ, clean_env(**redis_server.env), clear=True):
        options = celery_config(WorkerSettings())["broker_transport_options"]
    assert options["socket_timeout"] <= 5 and options["socket_connect_timeout"] <= 5
    assert options["socket_keepalive"] is True
    assert options["socket_keepalive_options"] == tcp_keepalive_options()
    assert options["health_check_interval"] <= 5


def test_the_cache_api_client_keeps_its_socket_alive_too(redis_any, tmp_path):
    """The cache API's async pool uses the same socket settings as every other client."""
    import asyncio

    from apps.cache_api.redis_clients import make_client
    from tests.apps.cache_api.conftest import settings_for

    settings = settings_for(redis_any, tmp_path)

    async def check() -> None:
        client = make_client(settings, settings.redis_host, settings.redis_port, settings.redis_tls)
        try:
            assert await client.ping()
            conn = await client.connection_pool.get_connection()
            try:
                sock = conn._writer.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                for name, value in TCP_KEEPALIVE.items():
                    if hasattr(socket, name):
                        assert _opt(sock, name) == value, name
            finally:
                await client.connection_pool.release(conn)
        finally:
            await client.aclose()

    asyncio.run(check())
