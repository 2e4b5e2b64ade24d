"""The raw commands a client sends, read off the wire by a TCP relay in front of a real redis-server.

The MONITOR audit (tests/apps/command_audit.py) sees only what the test server runs: a
command or subcommand newer than the test server itself (redis-py 8 sends ``CLIENT SETINFO``,
Redis 7.2, on every new connection and ignores the error) is refused before MONITOR sees it.
The relay records every byte a client sends (plain TCP only), handshakes included.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.apps.command_audit import check_command
from tests.apps.redis_docs import command_docs


def parse_resp_commands(data: bytes) -> list[list[str]]:
    """Client-to-server RESP: ``*N`` arrays of ``$len`` bulk strings."""
    commands, i = [], 0
    while i < len(data):
        if data[i:i + 1] != b"*":
            raise ValueError(f"not a RESP array at byte {i}: {data[i:i + 40]!r}")
        end = data.index(b"\r\n", i)
        count, i = int(data[i + 1:end]), end + 2
        args = []
        for _ in range(count):
            if data[i:i + 1] != b"$":
                raise ValueError(f"not a RESP bulk string at byte {i}: {data[i:i + 40]!r}")
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


def problems(commands: list[list[str]]) -> dict[str, str]:
    """command (first 80 chars) -> why Redis 6.0 would not run it; empty when all are 6.0."""
    found = {}
    for args in commands:
        why = unknown_to_docs(args) or check_command(args)
        if why:
            found[" ".join(args)[:80]] = why
    return found


def names(commands: list[list[str]]) -> set[str]:
    """``GET``, ``CLIENT SETNAME``, ...: what was sent, container commands with their subcommand."""
    return {" ".join(a[:2]).upper() if a[0].upper() in ("CLIENT", "SCRIPT") else a[0].upper() for a in commands}


class Relay:
    """127.0.0.1:<port> -> 127.0.0.1:<target>; keeps what each client connection sent."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.streams: list[bytearray] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            record = bytearray()
            with self._lock:
                self.streams.append(record)
            self._spawn(self._pipe, client, upstream, record)
            self._spawn(self._pipe, upstream, client, None)

    def _pipe(self, src: socket.socket, dst: socket.socket, record: bytearray | None) -> None:
        try:
            while data := src.recv(65536):
                if record is not None:
                    with self._lock:
                        record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def commands(self) -> list[list[str]]:
        with self._lock:
            streams = [bytes(s) for s in self.streams]
        return [args for stream in streams for args in parse_resp_commands(stream)]

    def close(self) -> None:
        self._closing = True
        self._listener.close()


@contextmanager
def relay(target_port: int) -> Iterator[Relay]:
    r = Relay(target_port)
    try:
        yield r
    finally:
        r.close()
