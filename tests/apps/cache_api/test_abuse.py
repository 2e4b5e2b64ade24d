"""One client cannot exhaust the cache API: a real uvicorn process with the
image's server flags, against clients that never finish their request.

Before (plain httptools, the image's old CMD): four connections streaming one endless header
grew the process by what they sent (411 MB, an OOM-killed pod), `/healthz` took 8.9 s against
the kubelet's 3 s, and half-sent requests stayed open for ever. Now (apps/cache_api/http_limits.py)
a request whose line and headers pass 16 KiB gets 400 and its connection is closed, a head
not complete within 10 s (or never started) has its connection closed, and the process keeps
its size and answers its probe in time.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from apps.cache_api.http_limits import HEAD_TIMEOUT_SECONDS, MAX_HEAD_BYTES

ABUSERS = 4
CHUNK = b"a" * 65536
SEND_LIMIT = 8 * 1024 * 1024  # per abusive connection, if the server never closes it
RSS_GROWTH_LIMIT = 24 * 1024 * 1024  # four connections x 8 MiB would be 32 MiB
PROBE_LIMIT_S = 1.0  # the kubelet allows 3 s


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _endless_header(port: int, sent: list[int], index: int) -> None:
    """Send a request line and one header that never ends, until the server closes or the limit."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: cache-api\r\nX-Endless: ")
        total = 0
        try:
            while total < SEND_LIMIT:
                s.sendall(CHUNK)
                total += len(CHUNK)
        except OSError:  # closed by the server: reset or broken pipe
            pass
        sent[index] = total


def test_an_endless_header_is_refused_and_the_process_stays_small(redis_server, sample_dataset, uvicorn_factory):
    api = uvicorn_factory({**redis_server.env, "DATASET_DIR": str(sample_dataset)})
    assert httpx.get(f"{api.url}/github_stats/python", timeout=10).status_code == 200  # warm
    rss_before = _rss(api.proc.pid)

    sent = [0] * ABUSERS
    threads = [threading.Thread(target=_endless_header, args=(api.port, sent, i)) for i in range(ABUSERS)]
    for t in threads:
        t.start()
    probe_times = []
    while any(t.is_alive() for t in threads):
        start = time.monotonic()
        assert httpx.get(f"{api.url}/healthz", timeout=5).status_code == 200
        probe_times.append(time.monotonic() - start)
        time.sleep(0.05)
    for t in threads:
        t.join()

    growth = _rss(api.proc.pid) - rss_before
    assert all(n < SEND_LIMIT for n in sent), f"the server kept reading an endless header: sent {sent} bytes"
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2**20:.1f} MiB under {ABUSERS} endless headers"
    assert max(probe_times, default=0) < PROBE_LIMIT_S, f"/healthz took {max(probe_times):.2f} s under abuse"
    assert api.proc.poll() is None


def test_an_oversized_header_gets_400_and_a_normal_request_still_works(redis_server, sample_dataset, uvicorn_factory):
    api = uvicorn_factory({**redis_server.env, "DATASET_DIR": str(sample_dataset)})
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as s:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: cache-api\r\nX-Big: " + b"b" * 400_000 + b"\r\n\r\n")
        except OSError:  # the server answered and closed before taking it all
            pass
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    # A header under the bound is served.
    ok = httpx.get(f"{api.url}/healthz", headers={"X-Fine": "c" * 8000}, timeout=5)
    assert ok.status_code == 200


def test_a_head_just_under_the_bound_is_served_and_kept_alive_requests_each_get_the_bound(
        redis_server, sample_dataset, uvicorn_factory):
    api = uvicorn_factory({**redis_server.env, "DATASET_DIR": str(sample_dataset)})
    padding = "d" * (MAX_HEAD_BYTES - 200)
    with httpx.Client(base_url=api.url, timeout=5) as client:  # one kept-alive connection
        for _ in range(3):
            assert client.get("/healthz", headers={"X-Pad": padding}).status_code == 200


@pytest.mark.slow
def test_half_sent_and_silent_connections_are_closed_and_probes_still_answer(redis_server, sample_dataset,
                                                                              uvicorn_factory):
    """Slowloris: 50 connections that send a byte of their head every 0.5 s and never finish,
    and 20 that connect and say nothing; all closed by the server within the head timeout."""
    api = uvicorn_factory({**redis_server.env, "DATASET_DIR": str(sample_dataset)})
    slow = [socket.create_connection(("127.0.0.1", api.port), timeout=1) for _ in range(50)]
    silent = [socket.create_connection(("127.0.0.1", api.port), timeout=1) for _ in range(20)]
    for s in slow:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: cache-api\r\nX-Slow: ")
    start = time.monotonic()
    open_slow = set(range(len(slow)))
    probe_times = []
    try:
        while open_slow and time.monotonic() - start < HEAD_TIMEOUT_SECONDS + 5:
            for i in list(open_slow):
                try:
                    slow[i].sendall(b"x")
                except OSError:
                    open_slow.discard(i)
            t0 = time.monotonic()
            assert httpx.get(f"{api.url}/healthz", timeout=5).status_code == 200
            probe_times.append(time.monotonic() - t0)
            time.sleep(0.5)
        closed_after = time.monotonic() - start
        assert not open_slow, f"{len(open_slow)} half-sent requests still open after {closed_after:.1f} s"
        for s in silent:  # the server closed them: a read returns end of file
            s.settimeout(2)
            assert s.recv(1) == b"", "a silent connection is still open"
        assert max(probe_times) < PROBE_LIMIT_S, f"/healthz took {max(probe_times):.2f} s"
    finally:
        for s in slow + silent:
            s.close()
