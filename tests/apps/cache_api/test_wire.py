"""Every byte the cache API sends Redis, the connection handshake included, is a command Redis
6.0 has.

The MONITOR audit (tests/apps/command_audit.py) sees only commands the test server runs: a
command or subcommand newer than the test server itself (redis-py 8 sends ``CLIENT SETINFO``,
Redis 7.2, and ``CLIENT MAINT_NOTIFICATIONS``, Redis 8, on every new connection and ignores
the error) is refused before MONITOR sees it. Here a relay in front of a real redis-server
records the raw RESP stream of a whole session: probes, a cold fill (lock, load, release), hot
reads, a view, a 404.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.apps.cache_api.conftest import serve, settings_for
from tests.apps.command_audit import check_command
from tests.apps.redis_docs import command_docs


def parse_resp_commands(data: bytes) -> list[list[str]]:
    """Client-to-server RESP: ``*N`` arrays of ``$len`` bulk strings."""
    commands, i = [], 0
    while i < len(data):
        assert data[i:i + 1] == b"*", data[i:i + 40]
        end = data.index(b"\r\n", i)
        count, i = int(data[i + 1:end]), end + 2
        args = []
        for _ in range(count):
            assert data[i:i + 1] == b"$"
            end = data.index(b"\r\n", i)
            length, i = int(data[i + 1:end]), end + 2
            args.append(data[i:i + length].decode("utf-8", "replace"))
            i += length + 2
        commands.append(args)
    return commands


def unknown_to_docs(args: list[str]) -> str | None:
    """A command or subcommand the server's own COMMAND DOCS does not list."""
    docs = command_docs()
    doc = docs.get(args[0].lower())
    if doc is None:
        return args[0]
    subcommands = doc.get("subcommands") or {}
    if subcommands and len(args) > 1 and f"{args[0]}|{args[1]}".lower() not in subcommands:
        return f"{args[0]} {args[1]}"
    return None


@contextlib.asynccontextmanager
async def relay(target_port: int):
    """A TCP relay to 127.0.0.1:target_port; yields (port, the client bytes of each connection)."""
    streams: list[bytearray] = []

    async def pipe(reader, writer, record: bytearray | None) -> None:
        try:
            while data := await reader.read(65536):
                if record is not None:
                    record.extend(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        record = bytearray()
        streams.append(record)
        await asyncio.gather(pipe(client_reader, server_writer, record), pipe(server_reader, client_writer, None))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], streams
    finally:
        server.close()


async def test_the_whole_session_uses_only_redis_6_0_commands(redis_server, sample_dataset):
    async with relay(redis_server.port) as (port, streams):
        settings = settings_for(redis_server, sample_dataset, redis_port=port, local_cache_ttl_seconds=0)
        async with serve(settings) as (_, client):
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/github_stats/python")).headers["x-cache"] == "fill"
            assert (await client.get("/github_stats/python")).headers["x-cache"] == "redis"
            assert (await client.get("/github_stats/go?sort=stars&limit=2")).status_code == 200
            assert (await client.get("/github_stats/nope")).status_code == 404
        await asyncio.sleep(0.1)  # the relay has forwarded everything
    commands = [args for stream in streams for args in parse_resp_commands(bytes(stream))]
    names = {" ".join(args[:2]).upper() if args[0].upper() == "CLIENT" else args[0].upper() for args in commands}
    assert {"HELLO", "CLIENT SETNAME", "PING", "GET", "MGET", "SET", "MULTI", "EXEC"} <= names, names
    problems = {" ".join(args)[:80]: unknown_to_docs(args) or check_command(args) for args in commands}
    assert not {cmd: why for cmd, why in problems.items() if why}, names
