"""bench/worker_bench.py runs every profile end to end (tiny, one round) against a real
redis-server and real workers: Celery's defaults, this worker, and the safe settings on
kombu's stock transport (which broke unseen once: it takes the credential only from the
URL). Its numbers are not asserted: benchmarks, not timed tests, judge speed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.lint.inventory import REPO

pytestmark = pytest.mark.slow


def test_the_worker_bench_runs_every_profile():
    out = subprocess.run([sys.executable, "-m", "bench.worker_bench", "--tasks", "40", "--rounds", "1"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(defaults|safe|safe-brpop) +([\d.]+) ", out.stdout,
                                                              re.MULTILINE)}
    assert set(rows) == {"defaults", "safe", "safe-brpop"}, out.stdout
    assert all(rate > 0 for rate in rows.values()), rows
