"""Putting a real redis-server at its limits, for the tests (no mock): a restart that is
still loading, a replica that refuses writes, the client limit all but reached. Memory
past ``maxmemory`` and every client slot taken: tests/apps/redis_fill.py."""

from __future__ import annotations

from collections.abc import Callable

import redis


#: redis.conf lines of a small Redis that refuses writes when full (as in-cluster and Azure are).
def full_at(maxmemory: str) -> dict[str, str]:
    return {"maxmemory": maxmemory, "maxmemory-policy": "noeviction"}


#: A restart that loads: an RDB saved at shutdown (SIGTERM with save points), loaded with
#: events processed often enough that clients get LOADING (at full speed: add a key-load-delay).
LOADS_AT_RESTART = {"save": "3600 1", "loading-process-events-interval-bytes": "1024"}

#: A restart that loads for a few seconds: LOADS_AT_RESTART, key by key slowly.
SLOW_LOAD = {**LOADS_AT_RESTART, "key-load-delay": "100"}


def load_lasting(seconds: float, keys: int) -> dict[str, str]:
    """redis.conf lines that make loading ``keys`` keys (an RDB at start, or a replica's full
    sync) last at least ``seconds``: a sleep per key (``key-load-delay``, microseconds)."""
    return {"key-load-delay": str(int(seconds * 1_000_000 / keys) + 1)}


def populate(server, n: int) -> None:
    """``n`` small keys (the data a restart must load back)."""
    with server.client() as c:
        pipe = c.pipeline(transaction=False)
        for i in range(n):
            pipe.set(f"data:{i}", i)
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()


def answering(predicate: Callable[[], object]) -> Callable[[], object]:
    """``predicate``, false while the server answers ``LOADING`` (the tests' own reads of a
    restarting server or of a replica loading its primary's data)."""
    def check() -> object:
        try:
            return predicate()
        except redis.BusyLoadingError:
            return False
    return check


#: redis.conf lines of a primary that sends a replica its data at once (by default a diskless
#: full sync waits 5 s for more replicas to join: repl-diskless-sync-delay).
PRIMARY = {"repl-diskless-sync-delay": "0"}


def replica_of(primary) -> dict[str, str]:
    """redis.conf lines that make a server a replica of ``primary`` (config at start: the
    Azure profiles refuse the REPLICAOF command)."""
    return {"replicaof": f"127.0.0.1 {primary.port}", "masterauth": primary.password}


def hold_clients(server, leave: int) -> list[redis.Redis]:
    """Open TCP connections until only ``leave`` more fit under ``maxclients``."""
    limit = int(server.settings["maxclients"])  # set at start (the Azure profiles refuse CONFIG)
    with server.client() as c:
        connected = c.info("clients")["connected_clients"]
    held = []
    for _ in range(limit - connected - leave):
        r = redis.Redis(**server.tcp_client_kwargs(), socket_timeout=5)
        r.ping()
        held.append(r)
    return held
