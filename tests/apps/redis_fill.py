"""Drive a real redis-server to its limits, on every server profile (tests/apps/redis_profiles.py).

- :func:`overfill`: used memory past ``maxmemory``, as a burst does. Under ``noeviction``
  Redis refuses a write only when used memory is *already* above the limit, so ordinary
  writes stop at the line and the state flickers (a freed query buffer brings it back
  under). A Lua script without a shebang is checked once, before its first write, so
  one ``EVAL`` of many ``SET``s goes well past the limit, and
  every later write is refused until :func:`free` deletes those keys (``DEL`` still runs).
- :func:`fill_clients`: every free client slot taken, until Redis refuses a connection
  (``max number of clients reached``, counted in ``rejected_connections``).

The harness talks over the server's Unix socket (not audited); the Azure profiles allow
``EVAL``, ``SCAN`` and ``DEL``.
"""

from __future__ import annotations

import redis

from tests.apps.redis_server import RedisServer

_OVERFILL = ("for i = 1, tonumber(ARGV[1]) do "
             "redis.call('SET', ARGV[3] .. i, string.rep('x', tonumber(ARGV[2]))) end return 1")
VALUE_BYTES = 16384


def refuses_writes(server: RedisServer) -> bool:
    with server.client() as c:
        try:
            c.set("redis-fill:probe", "1", px=1000)
        except redis.exceptions.OutOfMemoryError:
            return True
    return False


def overfill(server: RedisServer, prefix: str = "filler:", over: float = 0.25) -> int:
    """Push used memory to ``(1 + over) x maxmemory``; returns the number of keys written."""
    with server.client() as c:
        memory = c.info("memory")
        maxmemory, used = int(memory["maxmemory"]), int(memory["used_memory"])
        assert maxmemory > 0, "start the server with a maxmemory setting"
        count = max(1, int((maxmemory * (1 + over) - used) // VALUE_BYTES) + 1)
        c.eval(_OVERFILL, 0, count, VALUE_BYTES, prefix)
    assert refuses_writes(server), "the server still accepts writes"
    return count


def free(server: RedisServer, prefix: str = "filler:") -> None:
    """Delete what :func:`overfill` wrote: Redis accepts writes again."""
    with server.client() as c:
        keys = list(c.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            c.delete(*keys[start:start + 500])
    assert not refuses_writes(server), "the server still refuses writes"


def fill_clients(server: RedisServer, limit: int = 10_000) -> list[redis.Redis]:
    """Open connections until the server refuses one with ``max number of clients reached``.
    The caller closes them (:func:`close_all`) to free the slots."""
    held: list[redis.Redis] = []
    for _ in range(limit):
        try:  # a single-connection client connects (and is refused) when it is made
            client = server.client(single_connection_client=True)
            client.ping()
        except redis.exceptions.ConnectionError as exc:
            # Redis writes its error and closes: the client reads it, or meets the closed socket.
            assert held, exc
            rejected = held[0].info("stats")["rejected_connections"]
            assert rejected > 0, f"refused, but not at the client limit: {exc}"
            return held
        held.append(client)
    close_all(held)
    raise AssertionError(f"no client limit reached after {limit} connections")


def close_all(clients: list[redis.Redis]) -> None:
    for client in clients:
        client.close()
