"""A TCP proxy of the tests' own, on 127.0.0.1, for faults that look like nothing.

It forwards bytes between the apps and a real redis-server, and can make every connection it
holds at that moment go silent: from then on it neither forwards nor closes them (no FIN, no
RST), while new connections are forwarded at once. To the apps that is what a lost NAT or
conntrack entry, or a load balancer that drops idle flows without a reset, looks like: calls
on the old sockets get no answer, a new connection works. ``blackhole(True)`` makes new
connections silent too (a path that answers nothing at all), until ``blackhole(False)``;
``refuse(True)`` closes every connection and each new one at once (Redis gone, with resets).
"""

from __future__ import annotations

import selectors
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    silent: bool = False


@dataclass
class TcpProxy:
    target_port: int
    target_host: str = "127.0.0.1"
    port: int = 0
    _listener: socket.socket | None = None
    _pairs: list[_Pair] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _blackhole: bool = False
    _refuse: bool = False
    _resume: list[_Pair] = field(default_factory=list)
    _thread: threading.Thread | None = None
    #: Reads from clients forwarded upstream: a request/reply client makes at least one per
    #: round trip, a pipeline one for all its commands.
    client_chunks: int = 0

    def start(self) -> TcpProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        self._thread.start()
        return self

    def silence_existing(self) -> int:
        """Every connection open now goes silent for good; returns how many."""
        with self._lock:
            live = [p for p in self._pairs if not p.silent]
            for p in live:
                p.silent = True
            return len(live)

    def blackhole(self, on: bool) -> None:
        """On: every connection, open or new, is silent. Off: the path is back: every
        connection forwards again, the bytes held meanwhile included (as after a partition)."""
        with self._lock:
            self._blackhole = on
            if not on:
                for p in self._pairs:
                    if p.silent:
                        p.silent = False
                        self._resume.append(p)
        if on:
            self.silence_existing()

    def refuse(self, on: bool) -> None:
        """On: every open connection is closed, and each new one as soon as it is accepted."""
        with self._lock:
            self._refuse = on
            if on:
                for p in self._pairs:
                    p.silent = True  # the selector loop no longer reads them
                    for sock in (p.client, p.upstream):
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

    def connections(self) -> int:
        with self._lock:
            return sum(not p.silent for p in self._pairs)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        with self._lock:
            for p in self._pairs:
                p.client.close()
                p.upstream.close()
            self._pairs.clear()
        if self._listener:
            self._listener.close()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, None)
        while not self._stop.is_set():
            with self._lock:
                resume, self._resume = self._resume, []
            for pair in resume:
                for src, dst in ((pair.client, pair.upstream), (pair.upstream, pair.client)):
                    try:
                        sel.register(src, selectors.EVENT_READ, (pair, src, dst))
                    except (KeyError, ValueError):
                        pass
            for key, _ in sel.select(timeout=0.1):
                if key.data is None:
                    self._accept(sel)
                    continue
                pair, src, dst = key.data
                if pair.silent:  # neither forward nor close: leave the bytes unread
                    sel.unregister(src)
                    continue
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._close(sel, pair)
                    continue
                if src is pair.client:
                    self.client_chunks += 1
                try:
                    dst.sendall(data)
                except OSError:
                    self._close(sel, pair)
        sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._refuse:
            client.close()
            return
        try:
            upstream = socket.create_connection((self.target_host, self.target_port), timeout=5)
        except OSError:
            client.close()
            return
        client.setblocking(True)
        upstream.setblocking(True)
        with self._lock:
            pair = _Pair(client, upstream, silent=self._blackhole)
            self._pairs.append(pair)
        sel.register(client, selectors.EVENT_READ, (pair, client, upstream))
        sel.register(upstream, selectors.EVENT_READ, (pair, upstream, client))

    def _close(self, sel: selectors.BaseSelector, pair: _Pair) -> None:
        for s in (pair.client, pair.upstream):
            try:
                sel.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
