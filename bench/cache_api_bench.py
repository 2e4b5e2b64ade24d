"""Cache API benchmark: the real app vs the HTTP ceiling vs the tutorial baseline, in one run.

    python -m bench.cache_api_bench [--duration 2] [--rounds 8] [--connections 32] [--plot out.png]

What it does (bounded: under a minute with the defaults, 2 minutes at most):

1. starts its own ``redis-server`` on a free 127.0.0.1 port (password set, no persistence);
2. for each variant, starts ``uvicorn`` (uvloop, the image's server flags: httptools with
   the bounds of apps/cache_api/http_limits.py; no access log, one worker) on a free port, warms it (the first request fills the cache), then drives a hot
   full-tag read ``GET /github_stats/python`` with one load generator for ``--duration``
   seconds over ``--connections`` keep-alive connections:

   - ``cache_api``: the real app, ``apps.cache_api.main:app``;
   - ``ceiling``: a bare ASGI app that returns the same bytes and headers (the best any
     Python ASGI app can do on this server stack);
   - ``no_hotpath``: the real app with ``HOT_PATH=false``: every read goes through FastAPI
     routing and dependency injection (what the hot path saves);
   - ``httptools``, ``ceiling_httptools``: the real app and the bare app on plain httptools,
     the server the image ran before (no bound on a request's head): what the
     bounds cost;
   - ``h11``: the real app on uvicorn's h11 with its 16 KiB bound, the alternative;
   - ``tutorial``: the usual tutorial shape: FastAPI, a *sync* redis client inside an
     ``async`` handler, ``EXISTS`` then ``GET``, the JSON stored as a string and returned
     as a string (so the client gets a JSON string holding JSON);

3. keeps all servers up and measures them in turns, ``--rounds`` times, so that changes
   in the machine's background load (it may be shared) hit every variant alike; reports
   each variant's median requests/s, p50 and p99 latency, the median over rounds of its
   ratio to the ceiling measured in the same round, and the server's CPU time per request
   (from /proc), whose ratio to the ceiling's is the steadiest figure on a busy machine.

Load generator: ``wrk`` when installed (``apt-get install wrk``), else a built-in
raw-socket HTTP/1.1 keep-alive client in a separate process (slower: it measures less
of the server and more of itself; say which one was used when quoting numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
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

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password"
TAG = "python"
PATH = f"/github_stats/{TAG}"


# ---- the two comparison apps (imported by uvicorn from this module) ---------------------------


def _sample_bytes() -> bytes:
    from apps.cache_api.dataset import load_dataset
    from apps.cache_api.settings import SAMPLE_DATASET_DIR

    return load_dataset(Path(os.environ.get("DATASET_DIR", SAMPLE_DATASET_DIR))).tags[TAG]


def _make_ceiling_app():
    body = _sample_bytes()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"x-cache", b"local")]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    done = {"type": "http.response.body", "body": body}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send(start)
        await send(done)

    return app


def _make_tutorial_app():
    import redis
    from fastapi import FastAPI, HTTPException

    from apps.cache_api.settings import SAMPLE_DATASET_DIR

    dataset_dir = Path(os.environ.get("DATASET_DIR", SAMPLE_DATASET_DIR))
    r = redis.Redis(host=os.environ["REDIS_HOST"], port=int(os.environ["REDIS_PORT"]),
                    password=os.environ["REDIS_PASSWORD"], decode_responses=True)
    app = FastAPI()

    @app.get("/github_stats/{tag}")
    async def github_stats(tag: str):
        if r.exists(f"tutorial:{tag}"):
            return r.get(f"tutorial:{tag}")
        path = dataset_dir / f"{tag}.json"
        if not path.exists():
            raise HTTPException(404, "unknown tag")
        data = json.dumps(json.loads(path.read_text()))
        r.set(f"tutorial:{tag}", data, ex=3600)
        return data

    return app


def __getattr__(name: str):  # uvicorn bench.cache_api_bench:ceiling_app / :tutorial_app
    if name == "ceiling_app":
        return _make_ceiling_app()
    if name == "tutorial_app":
        return _make_tutorial_app()
    raise AttributeError(name)


# ---- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not answer 200 on {PATH}")


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server not found: apt-get install redis-server")
    port = free_port()
    proc = subprocess.Popen([server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly",
                             "no", "--dir", str(workdir), "--requirepass", PASSWORD],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"AUTH {PASSWORD}\r\nPING\r\n".encode())
                if b"PONG" in s.recv(64):
                    return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("redis-server did not start")


SERVER_CPU: list[str] = []  # e.g. ["taskset", "-c", "0"] with --pin
CLIENT_CPU: list[str] = []


def image_server_flags() -> list[str]:
    """The server flags of the cache API image's CMD (after ``--port 8000``): what the pod runs."""
    cmd = next(line for line in (REPO_ROOT / "apps" / "cache_api" / "Dockerfile").read_text().splitlines()
               if line.startswith("CMD "))
    argv = json.loads(cmd[len("CMD "):])
    return argv[argv.index("--port") + 2:]


HTTPTOOLS = ["--http", "httptools"]  # the image's former server: no bound on a request's head
H11 = ["--http", "h11", "--h11-max-incomplete-event-size", "16384"]  # uvicorn's own bound (size only)


def start_uvicorn(target: str, env: dict[str, str], flags: list[str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [*SERVER_CPU, sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
         "--loop", "uvloop", *flags, "--no-access-log", "--log-level", "warning"],
        cwd=REPO_ROOT, env={**os.environ, **env, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        wait_http(port)
    except RuntimeError:
        stop(proc)
        raise
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- load generators ---------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = 0.0  # server CPU time (user + system) per request, microseconds


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unparsable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def run_wrk(port: int, duration: float, connections: int) -> Result:
    out = subprocess.run(
        [*CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", f"http://127.0.0.1:{port}{PATH}"],
        capture_output=True, text=True, check=True, timeout=duration + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses:\s+(\d+)", r"Socket errors:.*?timeout (\d+)"):
        match = re.search(pattern, out)
        errors += int(match.group(1)) if match else 0
    return Result(rps, p50, p99, errors)


def _py_client_worker(port: int, duration: float, connections: int, queue) -> None:
    """One process: ``connections`` keep-alive connections, each request waits for its response."""
    request = f"GET {PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()

    async def conn(deadline: float, latencies: list[float], errors: list[int]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors.append(1)
        finally:
            writer.close()

    async def main() -> tuple[list[float], int]:
        latencies: list[float] = []
        errors: list[int] = []
        deadline = time.perf_counter() + duration
        await asyncio.gather(*(conn(deadline, latencies, errors) for _ in range(connections)))
        return latencies, len(errors)

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    queue.put(asyncio.run(main()))


def run_python_client(port: int, duration: float, connections: int) -> Result:
    queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_py_client_worker, args=(port, duration, connections, queue))
    proc.start()
    latencies, errors = queue.get(timeout=duration + 30)
    proc.join(timeout=10)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return Result(len(latencies) / duration, pick(0.50), pick(0.99), errors)


# ---- main --------------------------------------------------------------------------------------

# name: (ASGI target, extra env, server flags: None = the image's own)
VARIANTS: dict[str, tuple[str, dict[str, str], list[str] | None]] = {
    "cache_api": ("apps.cache_api.main:app", {}, None),
    "ceiling": ("bench.cache_api_bench:ceiling_app", {}, None),
    "no_hotpath": ("apps.cache_api.main:app", {"HOT_PATH": "false"}, None),
    "tutorial": ("bench.cache_api_bench:tutorial_app", {}, None),
    # The real app on the server the image ran before (httptools): what the bound costs.
    "httptools": ("apps.cache_api.main:app", {}, HTTPTOOLS),
    "ceiling_httptools": ("bench.cache_api_bench:ceiling_app", {}, HTTPTOOLS),
    # The real app on uvicorn's h11 with its size bound: the alternative to http_limits.py.
    "h11": ("apps.cache_api.main:app", {}, H11),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per measurement (default 2)")
    parser.add_argument("--rounds", type=int, default=8, help="turns over the variants (default 8)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--skip", action="append", default=[], choices=[v for v in VARIANTS if v != "ceiling"],
                        help="leave a variant out (repeatable)")
    parser.add_argument("--env", action="append", default=[], type=lambda kv: tuple(kv.split("=", 1)),
                        metavar="NAME=VALUE", help="extra environment for the servers (e.g. HOT_PATH=false)")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                        help="servers on CPU 0, wrk on CPU 1 (taskset; default off)")
    parser.add_argument("--plot", type=Path, help="write a bar chart (PNG) here")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 10 or not 1 <= args.rounds <= 10 or args.duration * args.rounds > 40:
        parser.error("--duration 1..10, --rounds 1..10, duration x rounds <= 40 (the run stays bounded)")

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    if client == "wrk" and not shutil.which("wrk"):
        parser.error("wrk not installed: apt-get install wrk (or --client python)")
    measure = run_wrk if client == "wrk" else run_python_client
    pin = bool(args.pin)
    if pin:
        SERVER_CPU[:] = ["taskset", "-c", "0"]
        CLIENT_CPU[:] = ["taskset", "-c", "1"]
    variants = [v for v in VARIANTS if v not in args.skip]

    results: dict[str, list[Result]] = {v: [] for v in variants}
    load_before = os.getloadavg()[0]
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    with tempfile.TemporaryDirectory(prefix="cache-api-bench-") as tmp:
        redis_proc, redis_port = start_redis(Path(tmp))
        env = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port), "REDIS_PASSWORD": PASSWORD,
               "REDIS_TLS": "false", "LOG_LEVEL": "WARNING", **dict(args.env)}
        try:
            # All servers up at once (an idle one costs nothing), then measured in turns, so that
            # a change in the machine's background load hits every variant alike.
            for variant in variants:
                target, extra, flags = VARIANTS[variant]
                servers[variant] = start_uvicorn(target, {**env, **extra},
                                                 image_server_flags() if flags is None else flags)
                measure(servers[variant][1], 1.0, args.connections)  # warm-up: fills the caches
            for round_no in range(args.rounds):
                for variant in variants:
                    proc, port = servers[variant]
                    cpu_before = cpu_seconds(proc.pid)
                    result = measure(port, args.duration, args.connections)
                    result.cpu_us = 1e6 * (cpu_seconds(proc.pid) - cpu_before) / (result.rps * args.duration)
                    results[variant].append(result)
                    print(f"round {round_no + 1} {variant:>10}: {result.rps:9.0f} req/s  p50 {result.p50_ms:6.2f} ms"
                          f"  p99 {result.p99_ms:6.2f} ms  cpu {result.cpu_us:6.1f} us/req  errors {result.errors}",
                          file=sys.stderr)
        finally:
            for proc, _ in servers.values():
                stop(proc)
            stop(redis_proc)

    summary = {v: median_result(rs) for v, rs in results.items()}
    per_round = {v: [r.rps / c.rps for r, c in zip(results[v], results["ceiling"], strict=True)] for v in variants}
    ratios = {v: statistics.median(per_round[v]) for v in variants}
    print(f"\nGET {PATH} (hot, {len(_sample_bytes())} bytes), {args.connections} connections, "
          f"{args.rounds} rounds x {args.duration:g} s per variant (medians), client: {client}, "
          f"cores: {os.cpu_count()}, pinned: {'server CPU 0, client CPU 1' if pin else 'no'}, "
          f"load average before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f}")
    ceiling_cpu = summary["ceiling"].cpu_us
    print(f"{'variant':<10} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs ceiling':>11} {'(range)':>11}"
          f" {'CPU us/req':>11} {'CPU ratio':>10} {'errors':>7}")
    for variant, r in summary.items():
        spread = f"{min(per_round[variant]):.2f}-{max(per_round[variant]):.2f}"
        print(f"{variant:<10} {r.rps:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} {ratios[variant]:10.2f}x {spread:>11}"
              f" {r.cpu_us:11.1f} {ceiling_cpu / r.cpu_us:9.2f}x {r.errors:7d}")
    print("vs ceiling: median over rounds of req/s divided by the ceiling's req/s in the same round.\n"
          "CPU ratio: the ceiling's server CPU time per request divided by this variant's (medians):\n"
          "the throughput ratio one server core would give, and far less sensitive to a busy machine.")
    if args.json:
        args.json.write_text(json.dumps({v: {**vars(r), "ratio": ratios[v], "ratios": per_round[v],
                                             "cpu_ratio": ceiling_cpu / r.cpu_us}
                                         for v, r in summary.items()}, indent=2))
    if args.plot:
        plot(summary, args.plot)
    return 1 if any(r.errors for rs in results.values() for r in rs) else 0


def median_result(results: list[Result]) -> Result:
    return Result(
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        errors=sum(r.errors for r in results),
        cpu_us=statistics.median(r.cpu_us for r in results),
    )


def plot(best: dict[str, Result], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(best)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.bar(names, [best[n].rps for n in names])
    a.set_title("requests/s (higher is better)")
    width = 0.4
    xs = range(len(names))
    b.bar([x - width / 2 for x in xs], [best[n].p50_ms for n in names], width, label="p50")
    b.bar([x + width / 2 for x in xs], [best[n].p99_ms for n in names], width, label="p99")
    b.set_xticks(list(xs), names)
    b.set_title("latency ms (lower is better)")
    b.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    raise SystemExit(main())
