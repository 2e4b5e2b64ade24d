"""Capacity figures, measured: what one task costs Redis, and what the default sizes hold.

    python -m bench.capacity [--tasks 2000] [--inflight 8]

A script, not a test (docs/capacity.md quotes its output). Bounded: about a minute.

1. starts its own ``redis-server`` (127.0.0.1, a free port, password, no persistence);
2. **queued task**: queues ``--tasks`` tasks with the producer CLI and reads ``used_memory``
   before and after (only the bench's own connection is open at both readings), and
   ``MEMORY USAGE`` of the list; beside it, the baseline: the bytes of the message itself
   (``LINDEX``) and of the user record it carries;
3. **in-flight task**: ``--inflight`` tasks running at once (one worker, that concurrency,
   5 s tasks): ``MEMORY USAGE`` of kombu's ``unacked`` hash and ``unacked_index`` zset, per task,
   while they run (the message also stays out of the queue list then);
4. **result**: after a worker processed ``--tasks`` tasks and exited, ``used_memory`` against
   the empty-queue baseline (the results and their TTLs are all that is left), and
   ``MEMORY USAGE`` of the hashes;
5. **commands per task**: ``INFO commandstats`` (``CONFIG RESETSTAT`` first) over the
   producer's burst, then over the worker's processing of it (``WORK_SECONDS=0``), by command;
   and what an idle worker sends per second (its pops time out every second, sweeps...);
6. **connection buffers**: ``mem_clients_normal`` / ``connected_clients`` with an idle worker
   connected: what each client connection costs the server;
7. what the default sizes hold: tasks queued before the producer's backpressure holds
   (``PUBLISH_MAX_MEMORY_PERCENT`` = 80 % of maxmemory, minus the empty server), and results
   held under the same threshold (with the default one-day TTL: tasks per day), for the
   in-cluster Redis (maxmemory 240 MiB, ``redisMemoryLimitMi`` 512) and Azure Managed Redis
   ``Balanced_B0`` (0.5 GB less Azure's reserve: the limit the stack passes,
   components/connections.py).

CONFIG and MEMORY are run on the bench's own server only; the apps never send them.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.worker_bench import REPO, Server
from components.connections import azure_managed_limit
from components.limits import redis_maxmemory_bytes

CELERY = str(Path(sys.executable).with_name("celery"))
PERCENT = 80  # apps/producer/settings.py: PUBLISH_MAX_MEMORY_PERCENT default


def app_env(server: Server, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "WORK", "REDIS_", "PRODUCER_"))}
    env.update(server.env, PYTHONPATH=str(REPO), WORK_SECONDS_MIN="0", WORK_SECONDS_MAX="0",
               CELERY_VISIBILITY_TIMEOUT="60", WORKER_METRICS_PORT="0", PRODUCER_METRICS_PORT="0")
    env.update(extra)
    return env


def produce(env: dict[str, str], n: int) -> None:
    out = subprocess.run([sys.executable, "-m", "apps.producer", "--count", str(n), "--rate", "0", "--seed", "1"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit(f"producer failed:\n{out.stderr}")


class Worker:
    def __init__(self, env: dict[str, str], workdir: Path, concurrency: int):
        self.hb = workdir / "worker.hb"
        self.hb.unlink(missing_ok=True)
        env = {**env, "WORKER_CONCURRENCY": str(concurrency), "WORKER_HEARTBEAT_FILE": str(self.hb)}
        self.log = open(workdir / "worker.log", "ab")
        self.proc = subprocess.Popen([CELERY, "-A", "apps.worker.celery_app", "worker", "--loglevel=WARNING"],
                                     cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, timeout: float = 60) -> Worker:
        deadline = time.monotonic() + timeout
        while not (self.hb.exists() and not json.loads(self.hb.read_text() or "{}").get("waiting_for_redis")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit("worker did not start")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.2)


def used(c) -> int:
    time.sleep(0.3)  # let the server free the buffers of clients that just left
    m = c.info("memory")
    return m["used_memory"] - m["mem_not_counted_for_evict"]


def commandstats(c) -> Counter:
    return Counter({k.removeprefix("cmdstat_"): v["calls"] for k, v in c.info("commandstats").items()})


def per_task(stats: Counter, n: float, unit: str = "task",
             skip: tuple[str, ...] = ("info", "config|resetstat", "config", "ping")) -> str:
    """Commands by name per ``unit``; INFO commandstats counts the commands a script or a
    MULTI runs too (EVALSHA and the HDEL + ZREM inside it are three)."""
    rows = sorted(((k, v / n) for k, v in stats.items() if k not in skip), key=lambda kv: -kv[1])
    total = sum(v for _, v in rows)
    return f"{total:.2f} per {unit}: " + ", ".join(f"{k.upper()} {v:.2f}" for k, v in rows if v >= 0.005)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--inflight", type=int, default=8)
    args = parser.parse_args(argv)
    n = args.tasks
    with tempfile.TemporaryDirectory(prefix="capacity-") as tmp:
        workdir = Path(tmp)
        server = Server(workdir)
        c = server.client
        try:
            version = c.info("server")["redis_version"]
            env = app_env(server)
            produce(env, 1)  # the queue's binding exists, as it would in a running stack
            c.delete("celery")
            empty = used(c)

            # queued tasks, and commands per published task
            c.config_resetstat()
            produce(env, n)
            publish_stats = commandstats(c)
            queued = used(c)
            per_queued = (queued - empty) / n
            list_bytes = c.memory_usage("celery", samples=0) / n
            message = len(c.lindex("celery", 0))
            body = json.loads(c.lindex("celery", 0))
            text = body["body"]  # JSON text (the producer's), or base64 of it (Celery's default)
            if body["properties"].get("body_encoding") == "base64":
                text = base64.b64decode(text)
            record = len(json.dumps(json.loads(text)[0][0]))

            # commands per processed task, and results
            c.config_resetstat()
            worker = Worker(env, workdir, concurrency=2).wait_ready()
            wait_until(lambda: c.llen("celery") == 0 and not c.exists("unacked")
                       and sum(1 for _ in c.scan_iter("users:*", count=5000)) >= n, 300, "the burst processed")
            worker_stats = commandstats(c)
            clients = c.info("clients")["connected_clients"]
            per_client = c.info("memory")["mem_clients_normal"] / clients
            c.config_resetstat()
            time.sleep(10)
            idle_stats = commandstats(c)
            worker.stop()
            results_used = used(c)
            per_result = (results_used - empty) / n
            keys = list(c.scan_iter("users:*", count=5000))[:200]
            per_result_key = sum(c.memory_usage(k, samples=0) for k in keys) / len(keys)

            # in-flight tasks
            c.flushall()
            produce(env, 1)
            c.delete("celery")
            slow = app_env(server, WORK_SECONDS_MIN="5", WORK_SECONDS_MAX="5")
            produce(slow, args.inflight)
            worker = Worker(slow, workdir, concurrency=args.inflight).wait_ready()
            wait_until(lambda: c.hlen("unacked") == args.inflight, 30, "tasks in flight")
            per_inflight = (c.memory_usage("unacked", samples=0)
                            + c.memory_usage("unacked_index", samples=0)) / args.inflight
            worker.stop()
        finally:
            server.stop()

    print(f"measured {time.strftime('%Y-%m-%d')} on redis-server {version}, {n} tasks (bench/capacity.py)\n")
    print("| what | bytes per task | baseline |")
    print("| --- | ---: | --- |")
    print(f"| queued task (used_memory) | {per_queued:,.0f} | the message {message:,} B, its user record {record:,} B |")
    print(f"| queued task (MEMORY USAGE of the list) | {list_bytes:,.0f} | |")
    print(f"| in-flight task (unacked hash + index) | {per_inflight:,.0f} | the message {message:,} B |")
    print(f"| result users:<id> (used_memory) | {per_result:,.0f} | the record {record:,} B + worker_id, processed_at |")
    print(f"| result users:<id> (MEMORY USAGE) | {per_result_key:,.0f} | |")
    print(f"| one client connection (mem_clients_normal) | {per_client:,.0f} | |")
    print(f"| empty server (used_memory) | {empty:,} | |")
    print()
    print(f"Redis commands, producer: {per_task(publish_stats, n)}")
    print(f"Redis commands, worker:   {per_task(worker_stats, n)}")
    print(f"Idle worker:              {per_task(idle_stats, 10, unit='second')}")
    print()
    print(f"| Redis | maxmemory | backpressure at {PERCENT} % | tasks queued before it holds | results under it "
          f"(one-day TTL: tasks per day) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, limit in (("in-cluster (redisMemoryLimitMi 512)", redis_maxmemory_bytes(512)),
                        ("Azure Managed Redis Balanced_B0", azure_managed_limit("Balanced_B0").memory_bytes)):
        room = limit * PERCENT // 100 - empty
        print(f"| {name} | {limit / 2**20:,.0f} MiB | {limit * PERCENT / 100 / 2**20:,.0f} MiB | "
              f"{room / per_queued:,.0f} | {room / per_result:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
