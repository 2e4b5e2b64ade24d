"""bench/per_task.py runs end to end (tiny, one round) and prints every figure for both
profiles, read from a real redis-server and real workers. Its numbers are not asserted
beyond what any run must show: benchmarks, not timed tests, judge speed."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.lint.inventory import REPO

pytestmark = pytest.mark.slow


def test_the_per_task_bench_prints_every_figure_for_both_profiles():
    out = subprocess.run([sys.executable, "-m", "bench.per_task", "--tasks", "60", "--rounds", "1"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = [line for line in out.stdout.splitlines() if re.match(r"^[a-zA-Z/ ]+ {2,}[\d.]", line)]
    figures = {line[:22].strip(): line[22:].split() for line in lines}
    assert set(figures) == {"tasks/s", "producer cmds/task", "producer trips/task", "worker cmds/task",
                            "worker trips/task", "Redis CPU us/task", "command us/task", "bytes/queued task",
                            "worker CPU ms/task"}
    for label, cells in figures.items():
        defaults, safe = float(cells[0]), float(cells[2])
        assert defaults > 0 and safe > 0, (label, cells)
    # Every task is one LPUSH at least, and every delivery more than one command.
    assert float(figures["producer cmds/task"][0]) >= 1 and float(figures["worker cmds/task"][2]) > 1
