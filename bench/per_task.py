"""What one task costs Redis, this project's producer and worker against plain Celery with its
defaults (its own send_task loop, bench/plain_producer.py, and its delivery defaults), one run.

    python -m bench.per_task [--tasks 2000] [--rounds 3] [--concurrency 2]

The rounds of bench/worker_bench.py (same Redis, same records, same task code, same
concurrency, alternating order), read from Redis's side: per task, the commands the
producer and the worker sent (``INFO commandstats``), their requests (``total_reads_processed``:
a pipeline is one, so this is the round trips), the CPU the Redis server spent (``INFO cpu``,
its process's user + system time: reading, running and replying; the commands' own time from
``commandstats`` is shown beside it, with a script's inner commands counted twice, as Redis
counts them), and the bytes a queued task takes (``used_memory`` after queueing, over the tasks); with the
worker's own tasks/s and CPU. Medians, and each as a ratio to Celery's defaults
(docs/benchmarks.md has a run).

The worker's figures start when the queued tasks appear to a started worker, and include
the bench's own polling while it drains (a few commands every half second) and Redis's own
background cycle: noise of a few hundredths of a command per task at 2,000 tasks.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.worker_bench import Round, Server, one_round

PROFILES = ("defaults", "safe")

#: (label, value of one round) for each column, in order.
COLUMNS = (
    ("tasks/s", lambda r: r.rate),
    ("producer cmds/task", lambda r: r.producer.calls / r.tasks),
    ("producer trips/task", lambda r: r.producer.reads / r.tasks),
    ("worker cmds/task", lambda r: r.worker.calls / r.tasks),
    ("worker trips/task", lambda r: r.worker.reads / r.tasks),
    ("Redis CPU us/task", lambda r: (r.producer.cpu_usec + r.worker.cpu_usec) / r.tasks),
    ("command us/task", lambda r: (r.producer.usec + r.worker.usec) / r.tasks),
    ("bytes/queued task", lambda r: r.producer.used_memory / r.tasks),
    ("worker CPU ms/task", lambda r: r.cpu_ms_per_task),
)


def table(results: dict[str, list[Round]]) -> list[str]:
    """One line per profile and figure: median, and the ratio to the defaults' median."""
    base = {label: statistics.median(f(r) for r in results["defaults"]) for label, f in COLUMNS}
    lines = [f"{'figure':<22}" + "".join(f"{p:>14}{'vs defaults':>13}" for p in results)]
    for label, f in COLUMNS:
        cells = ""
        for rounds in results.values():
            med = statistics.median(f(r) for r in rounds)
            cells += f"{med:>14.2f}{(med / base[label] if base[label] else float('nan')):>12.2f}x"
        lines.append(f"{label:<22}{cells}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.per_task", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180, help="per round")
    args = parser.parse_args(argv)
    if args.tasks < 2 or args.rounds < 1:
        parser.error("--tasks >= 2, --rounds >= 1")
    with tempfile.TemporaryDirectory(prefix="per-task-bench-") as tmp:
        server = Server(Path(tmp))
        results: dict[str, list[Round]] = {p: [] for p in PROFILES}
        try:
            for i in range(args.rounds):
                for p in PROFILES if i % 2 == 0 else tuple(reversed(PROFILES)):
                    r = one_round(server, p, args.tasks, args.concurrency, Path(tmp), args.timeout)
                    results[p].append(r)
                    print(f"round {i + 1} {p:<9} {r.rate:8.1f} tasks/s", flush=True)
        finally:
            server.stop()
    print(f"\n{args.tasks} tasks, WORK_SECONDS=0, concurrency {args.concurrency}, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs; medians")
    print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
