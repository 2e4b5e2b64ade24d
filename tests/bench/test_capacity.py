"""bench/capacity.py runs end to end (a small burst) against a real redis-server, the real
producer and a real worker, and prints every table it promises. Its numbers are not
asserted beyond what any run must show."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.lint.inventory import REPO

pytestmark = pytest.mark.slow


def test_the_capacity_bench_prints_bytes_commands_and_sizes():
    out = subprocess.run([sys.executable, "-m", "bench.capacity", "--tasks", "60", "--inflight", "2"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    queued = re.search(r"\| queued task \(used_memory\) \| ([\d,]+) \| the message ([\d,]+) B, its user record "
                       r"([\d,]+) B \|", out.stdout)
    assert queued, out.stdout
    per_task, message, record = (int(g.replace(",", "")) for g in queued.groups())
    assert record < message < per_task < 4 * message, out.stdout  # the message, plus the list's own bytes
    for line in ("| in-flight task (unacked hash + index) |", "| result users:<id> (used_memory) |",
                 "Redis commands, producer:", "Redis commands, worker:", "Idle worker:",
                 "| in-cluster"):
        assert line in out.stdout, (line, out.stdout)
