"""uvicorn's httptools protocol with the two bounds it lacks: how large a request's head
(request line and headers) may grow, and how long a client may take to send it.

Why this exists: httptools buffers a head for as long as the client keeps sending it. One
client streaming an endless header grew the process by what it sent (411 MB with four
connections: an OOM-killed pod), `/healthz` took 8.9 s against the kubelet's 3 s, and a
connection that never finished its request (or never sent one) stayed open for ever. uvicorn's
h11 protocol bounds the size but not the time, and costs three times the CPU per hot read
(bench/cache_api_bench.py, `httptools` vs `cache_api` before this class). The image runs
`uvicorn ... --http apps.cache_api.http_limits:BoundedHttpToolsProtocol` (uvicorn imports a
protocol class by name).

What it does not bound: request bodies (no endpoint of this API reads one; a body is
discarded as it arrives) and the number of connections (the kernel's backlog and the pod's
file limit do; docs/cache-api.md, "One client cannot exhaust it").
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024
"""Bytes a request's line and headers may take before the request is refused with 400."""
HEAD_TIMEOUT_SECONDS = 10.0
"""From a connection's start, or a kept-alive connection's next first byte, to the end of the
head; then the connection is closed. Idle kept-alive connections close sooner (uvicorn's
`--timeout-keep-alive`)."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_done = False
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._head_done:
            if self._head_timer is None:  # the first byte of the next request on this connection
                self._head_timer = self.loop.call_later(HEAD_TIMEOUT_SECONDS, self._head_timed_out)
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._cancel_head_timer()
                self.logger.warning("Request refused: its line and headers passed %d bytes.", MAX_HEAD_BYTES)
                self.send_400_response("Request line and headers too large.")
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_done = False  # what arrives next is the next request's head
        self._head_bytes = 0

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._head_done and not self.transport.is_closing():
            self.logger.warning("Connection closed: no complete request line and headers within %.0f s.",
                                HEAD_TIMEOUT_SECONDS)
            self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
