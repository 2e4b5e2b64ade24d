"""A Pulumi plugin (a component provider, a policy pack) in its own process, as the engine
runs one: it prints its gRPC port on its first line of stdout, then serves on it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc


@contextlib.contextmanager
def plugin_channel(args: list[str], cwd: Path, ready_timeout: float) -> Iterator[grpc.Channel]:
    """``python -u ARGS`` in ``cwd``; a channel to the port it prints, ready; killed after."""
    proc = subprocess.Popen([sys.executable, "-u", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().strip() or 0)
        assert port, proc.stderr.read()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=ready_timeout)
            yield channel
    finally:
        proc.kill()
        proc.wait(timeout=10)
