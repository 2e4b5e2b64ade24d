"""What this ``redis-server`` says about its own commands: ``COMMAND DOCS``, once per session.

The Redis server profiles (which commands to disable to look like Redis 6.0) and the
command audit (which argument forms are newer than 6.0) are both derived from the
server's own documentation instead of a hand-written list: every command, subcommand and
argument carries the version that introduced it (``since``).
"""

from __future__ import annotations

import functools
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

import redis

#: The oldest Redis the apps must run on: Azure Cache for Redis "6" is Redis 6.0.14.
OLDEST = (6, 0, 14)

Doc = dict[str, Any]


def version(text: str | bytes) -> tuple[int, ...]:
    if isinstance(text, bytes):
        text = text.decode()
    return tuple(int(part) for part in text.split("."))


def newer_than_oldest(since: str | bytes | None) -> bool:
    """True for a ``since`` after 6.0 (6.0.x patch releases add no commands)."""
    return since is not None and version(since)[:2] > OLDEST[:2]


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict):
        return {_decode(k): _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def command_docs() -> dict[str, Doc]:
    """``COMMAND DOCS`` of the installed redis-server: command name (lower case) -> doc.

    Subcommands stay nested under their container (``doc["subcommands"]["client|info"]``).
    A throwaway server answers (started and stopped here), so no test's server is touched.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: install it (apt-get install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="redis-docs-") as workdir:
        proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                                 "--appendonly", "no", "--dir", workdir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    client = redis.Redis(host="127.0.0.1", port=port, protocol=3, socket_timeout=5)
                    conn = client.connection_pool.get_connection()
                    break
                except redis.ConnectionError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("redis-server for COMMAND DOCS did not start") from None
                    time.sleep(0.05)
            try:
                # Raw read: redis-py's COMMAND parser does not handle the DOCS reply.
                conn.send_command("COMMAND", "DOCS")
                docs = conn.read_response()
            finally:
                client.connection_pool.release(conn)
                client.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return {name.lower(): doc for name, doc in _decode(docs).items()}


def server_version() -> tuple[int, ...]:
    out = subprocess.run([shutil.which("redis-server") or "redis-server", "--version"],
                         capture_output=True, text=True, check=True).stdout
    return version(out.split("v=")[1].split()[0])


def commands_newer_than_oldest() -> list[str]:
    """Top-level commands that Redis 6.0 does not have (``BLMOVE``, ``GETDEL``, ...)."""
    return sorted(name for name, doc in command_docs().items() if newer_than_oldest(doc.get("since")))


def subcommands_newer_than_oldest() -> list[str]:
    """``container|sub`` pairs that Redis 6.0 does not have (``client|info``, ...), under a
    container that 6.0 does have (a newer container is disabled as a whole)."""
    out = []
    for doc in command_docs().values():
        if newer_than_oldest(doc.get("since")):
            continue
        for sub, sub_doc in (doc.get("subcommands") or {}).items():
            if newer_than_oldest(sub_doc.get("since")):
                out.append(sub.lower())
    return sorted(out)
