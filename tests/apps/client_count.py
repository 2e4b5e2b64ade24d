"""Count the connections real processes hold on a real redis-server, as Redis sees them.

:class:`ClientSampler` polls ``CLIENT LIST`` over the harness's Unix socket and keeps the
peak number of TCP clients: every app connects over TCP to 127.0.0.1, while the harness
and the command audit's ``MONITOR`` use the Unix socket, so they are not counted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from tests.apps.redis_server import RedisServer


def tcp_clients(server: RedisServer) -> list[dict]:
    with server.client() as c:
        return [cl for cl in c.client_list()
                if not cl["addr"].startswith("/") and "U" not in cl.get("flags", "") and cl.get("cmd") != "monitor"]


class ClientSampler(threading.Thread):
    """Samples until :meth:`stop`; ``peak`` is the most TCP clients seen at once (a primary's
    replication links included, a replica's link to its primary not), ``at_peak`` how they
    were spread by last command (for a failure message)."""

    def __init__(self, server: RedisServer, interval: float = 0.02, max_seconds: float = 120) -> None:
        super().__init__(daemon=True)
        self.server, self.interval, self.max_seconds = server, interval, max_seconds
        self._halt = threading.Event()
        self.peak = 0
        self.at_peak: Counter[str] = Counter()
        self.replicas = 0  # replication links (flag S) seen at once, at most

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with self.server.client() as c:
            while not self._halt.is_set() and time.monotonic() < deadline:
                # flag M: a replica's link to its primary (not a client of ours)
                clients = [cl for cl in c.client_list() if not cl["addr"].startswith("/")
                           and not {"U", "M"} & set(cl.get("flags", "")) and cl.get("cmd") != "monitor"]
                if len(clients) > self.peak:
                    self.peak, self.at_peak = len(clients), Counter(cl.get("cmd", "?") for cl in clients)
                self.replicas = max(self.replicas, sum("S" in cl.get("flags", "") for cl in clients))
                time.sleep(self.interval)

    def stop(self) -> ClientSampler:
        self._halt.set()
        self.join(timeout=10)
        return self

    def __enter__(self) -> ClientSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
