"""Worker benchmark: tasks/s with the safe delivery settings vs Celery's defaults, one run.

    python -m bench.worker_bench [--tasks 2000] [--rounds 5] [--concurrency 2] [--plot out.png]

What it does (bounded: about two minutes with the defaults):

1. starts its own ``redis-server`` on a free 127.0.0.1 port (password set, no persistence);
2. for each profile, in turns, ``--rounds`` times: empties Redis, queues ``--tasks`` tasks
   with the producer CLI (no worker running, so they all wait in the list; the bench
   checks LLEN == tasks), starts one real ``celery worker`` (prefork, ``--concurrency``
   processes, WORK_SECONDS_MIN = MAX = 0), waits until every task's HASH exists, stops it;
3. hides the queued tasks (RENAME) until the worker has connected, then measures
   throughput from the tasks' own ``processed_at`` stamps (first to last) and the CPU
   time of the worker's process tree (main + pool) over the run, so worker start-up and
   shutdown are not counted (CPU per task is the number that resists a busy machine);
4. reports each profile's median, best and worst round, with the ratio of medians to
   Celery's defaults (the machine may be shared: rounds alternate their order, and the
   median resists one lucky or unlucky round).

Profiles (same task code, same Request/Consumer classes, same Redis, same machine):

- ``defaults``: Celery's delivery defaults: acks early, prefetch multiplier 4, no
  reject-on-worker-lost, kombu's stock BRPOP transport and unacked sweep;
- ``safe``: what the worker runs (apps/worker/celery_app.py): acks late, reject on worker
  lost, prefetch 1, visibility timeout + tuned sweep, the recoverable pop (one script that
  pops and records; BRPOPLPUSH on an empty queue: apps/worker/broker.py) and the ack inside
  the task's transaction;
- ``safe-brpop``: ``safe`` on kombu's stock BRPOP transport, to show what the recoverable
  pop costs or saves.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password-not-a-secret"
PROFILES = {
    "defaults": "bench.worker_bench:defaults_app",
    "safe": "apps.worker.celery_app",
    "safe-brpop": "bench.worker_bench:safe_brpop_app",
}


def __getattr__(name: str):
    """``celery -A bench.worker_bench:defaults_app``: apps built lazily, in the worker process."""
    if name in ("defaults_app", "safe_brpop_app"):
        from apps.worker.celery_app import build_app, load_settings, url_with_credential

        settings = load_settings()
        if name == "defaults_app":
            return build_app(settings, safe=False, main="bench-defaults")
        app = build_app(settings, safe=True, main="bench-safe-brpop")
        app.conf.broker_transport = None  # the URL scheme picks kombu's own redis transport,
        app.conf.broker_url = url_with_credential(settings)  # which reads the credential there only
        return app
    raise AttributeError(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, workdir: Path):
        self.port = free_port()
        exe = shutil.which("redis-server")
        if exe is None:
            sys.exit("redis-server not found: apt-get install redis-server")
        self.proc = subprocess.Popen(
            [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--requirepass", PASSWORD],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(host="127.0.0.1", port=self.port, password=PASSWORD)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    self.stop()
                    sys.exit("redis-server did not start")
                time.sleep(0.05)

    @property
    def env(self) -> dict[str, str]:
        return {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port), "REDIS_PASSWORD": PASSWORD,
                "REDIS_TLS": "false", "REDIS_DB": "0"}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@dataclass(frozen=True)
class RedisCounters:
    """What Redis itself counts: commands, their CPU (``INFO commandstats``), read events
    (``total_reads_processed``: one per request a client sends, a pipeline being one) and memory."""

    calls: int
    usec: int
    reads: int
    used_memory: int
    cpu_usec: int = 0
    """The server process's own CPU (``INFO cpu``: user + system), reading, parsing and
    replying included: what bounds one primary. ``usec`` (commandstats) counts a script's
    inner commands twice (their own time, and again inside EVALSHA's) and no I/O."""

    @classmethod
    def of(cls, client: redis.Redis) -> RedisCounters:
        stats = client.info("commandstats")
        cpu = client.info("cpu")
        return cls(calls=sum(int(v["calls"]) for v in stats.values()),
                   usec=sum(int(v["usec"]) for v in stats.values()),
                   reads=int(client.info("stats")["total_reads_processed"]),
                   used_memory=int(client.info("memory")["used_memory"]),
                   cpu_usec=round(1e6 * (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]))))

    def __sub__(self, other: RedisCounters) -> RedisCounters:
        return RedisCounters(self.calls - other.calls, self.usec - other.usec, self.reads - other.reads,
                             self.used_memory - other.used_memory, self.cpu_usec - other.cpu_usec)


@dataclass
class Round:
    profile: str
    tasks: int
    seconds: float
    cpu_seconds: float
    producer: RedisCounters | None = None
    """What Redis counted while the producer queued the tasks (used_memory: what they take)."""
    worker: RedisCounters | None = None
    """What Redis counted while the worker drained them, from the moment the queue appeared
    (the bench's own polling included: a few commands every half second)."""

    @property
    def cpu_ms_per_task(self) -> float:
        return 1000 * self.cpu_seconds / self.tasks

    @property
    def rate(self) -> float:
        return (self.tasks - 1) / self.seconds


def queue_tasks(env: dict[str, str], n: int, plain: bool = False) -> None:
    """The project's producer, or (``plain``, for Celery's defaults) Celery's own send_task loop."""
    argv = ([sys.executable, "-m", "bench.plain_producer", str(n)] if plain else
            [sys.executable, "-m", "apps.producer", "--count", str(n), "--rate", "0", "--seed", "1"])
    out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit(f"producer failed:\n{out.stderr}")


def one_round(server: Server, profile: str, n: int, concurrency: int, workdir: Path,
              timeout: float) -> Round:
    c = server.client
    c.flushall()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "WORK", "REDIS_"))}
    env.update(server.env, PYTHONPATH=str(REPO), WORK_SECONDS_MIN="0", WORK_SECONDS_MAX="0",
               CELERY_VISIBILITY_TIMEOUT="60", WORKER_METRICS_PORT="0",
               WORKER_CONCURRENCY=str(concurrency), WORKER_HEARTBEAT_FILE=str(workdir / f"{profile}.hb"))
    before = RedisCounters.of(c)
    queue_tasks(env, n, plain=profile == "defaults")
    queued = RedisCounters.of(c)
    assert c.llen("celery") == n, "tasks not all queued in the CELERY_QUEUE list"
    c.rename("celery", "bench:staging")  # hidden until the worker is up
    hb = workdir / f"{profile}.hb"
    hb.unlink(missing_ok=True)
    celery = str(Path(sys.executable).with_name("celery"))
    log = open(workdir / f"{profile}.log", "ab")
    proc = subprocess.Popen([celery, "-A", PROFILES[profile], "worker", "--loglevel=WARNING",
                             "--without-mingle", "--without-gossip", "-n", f"bench-{profile}@localhost"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not hb.exists():  # the first heartbeat: connected and consuming
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{profile}: worker did not start; see {workdir / (profile + '.log')}")
            time.sleep(0.1)
        time.sleep(0.5)
        cpu0 = tree_cpu_seconds(proc.pid)
        started = RedisCounters.of(c)  # the worker's start-up is not a task's cost
        c.rename("bench:staging", "celery")
        while True:
            time.sleep(0.5)
            if c.llen("celery") == 0 and not c.exists("unacked") and c.dbsize() >= n:
                keys = list(c.scan_iter("users:*", count=5000))
                if len(keys) >= n:
                    cpu = tree_cpu_seconds(proc.pid) - cpu0
                    drained = RedisCounters.of(c)
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{profile}: worker died or timed out; see {workdir / (profile + '.log')}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        log.close()
    pipe = c.pipeline(transaction=False)
    for key in keys:
        pipe.hget(key, "processed_at")
    stamps = sorted(float(s) for s in pipe.execute())
    return Round(profile, len(stamps), stamps[-1] - stamps[0], cpu, producer=queued - before,
                 worker=drained - started)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of the worker's main process and its pool children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for p in [pid, *map(int, children)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def plot(results: dict[str, list[Round]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    best = [statistics.median(r.rate for r in results[p]) for p in names]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    bars = ax.bar(names, best, color=["#9e9e9e", "#2e7d32", "#81c784"][: len(names)])
    for bar, value, p in zip(bars, best, names, strict=True):
        top = max(r.rate for r in results[p])
        ax.annotate(f"{value:.0f}", (bar.get_x() + bar.get_width() / 2, top * 1.02), ha="center", va="bottom")
    ax.set_ylim(0, max(r.rate for rs in results.values() for r in rs) * 1.15)
    for i, p in enumerate(names):
        ax.scatter([i] * len(results[p]), [r.rate for r in results[p]], color="black", s=12, zorder=3)
    ax.set_ylabel("tasks/s (bar: median; dots: every round)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--profiles", default="defaults,safe,safe-brpop")
    parser.add_argument("--timeout", type=float, default=180, help="per round")
    parser.add_argument("--plot", type=Path, default=None, help="write a bar chart (PNG)")
    args = parser.parse_args(argv)
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    unknown = set(profiles) - set(PROFILES)
    if unknown or "defaults" not in profiles or args.tasks < 2 or args.rounds < 1:
        parser.error(f"profiles from {sorted(PROFILES)} including 'defaults'; --tasks >= 2; --rounds >= 1")

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as tmp:
        workdir = Path(tmp)
        server = Server(workdir)
        results: dict[str, list[Round]] = {p: [] for p in profiles}
        try:
            for i in range(args.rounds):
                for p in profiles if i % 2 == 0 else list(reversed(profiles)):
                    r = one_round(server, p, args.tasks, args.concurrency, workdir, args.timeout)
                    results[p].append(r)
                    print(f"round {i + 1} {p:<11} {r.rate:8.1f} tasks/s ({r.tasks} tasks in {r.seconds:.2f}s), "
                          f"{r.cpu_ms_per_task:.2f} worker CPU ms/task", flush=True)
        finally:
            server.stop()

    base = statistics.median(r.rate for r in results["defaults"])
    print(f"\n{args.tasks} tasks, WORK_SECONDS=0, concurrency {args.concurrency}, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    base_cpu = statistics.median(r.cpu_ms_per_task for r in results["defaults"])
    print(f"{'profile':<12}{'median tasks/s':>16}{'best':>9}{'worst':>9}{'vs defaults':>13}"
          f"{'CPU ms/task':>13}{'vs defaults':>13}")
    for p in profiles:
        rates = [r.rate for r in results[p]]
        med = statistics.median(rates)
        cpu = statistics.median(r.cpu_ms_per_task for r in results[p])
        print(f"{p:<12}{med:>16.1f}{max(rates):>9.1f}{min(rates):>9.1f}{med / base:>12.2f}x"
              f"{cpu:>13.2f}{cpu / base_cpu:>12.2f}x")
    if args.plot:
        plot(results, args.plot, f"Celery worker, {args.tasks} tasks x {args.rounds} rounds, "
                                 f"WORK_SECONDS=0, concurrency {args.concurrency}")
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
