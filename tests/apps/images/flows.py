"""The image smoke, as functions the tests and the tests of the tests both call: each raises
``ImageError`` naming the image that failed.

Every flow runs an image's own CMD (from its Dockerfile) or the contract's commands
(docs/contract.md) inside that image's environment, against a real redis-server.
"""

from __future__ import annotations

import json
import re
import time

import httpx

from tests.apps.images.image import Image, ImageError, Proc
from tests.apps.redis_server import RedisServer, free_port

BURST = 20
WORKER_HEALTHCHECK = ["python", "-m", "apps.worker.healthcheck"]
PRODUCER_HEALTHCHECK = ["python", "-m", "apps.producer.healthcheck"]
#: The simulated work per task, kept short (WORK_SECONDS_* are contract variables).
FAST_WORK = {"WORK_SECONDS_MIN": "0", "WORK_SECONDS_MAX": "0.05"}


def remap_ports(words, ports: dict[int, int]) -> list[str]:
    """``words`` with each port the image declares (``8000``, ``--port=8000``) replaced by the
    local port standing in for it: several "containers" share this machine's network."""
    out = []
    for word in words:
        for container_port, local in ports.items():
            if word == str(container_port):
                word = str(local)
            elif word.endswith(f"={container_port}"):
                word = word[: -len(str(container_port))] + str(local)
        out.append(word)
    return out


def local_ports(image: Image) -> dict[int, int]:
    return {port: free_port() for port in image.dockerfile.expose}


def wait_command_ok(proc: Proc, argv: list[str], timeout: float = 60, extra_env: dict | None = None) -> str:
    """Run ``argv`` in ``proc``'s container (same image, env, /tmp) until it exits 0."""
    last = {"out": ""}

    def ok() -> bool:
        out = proc.image.run(argv, extra_env, tmp=proc.tmp, timeout=30)
        last["out"] = out.stdout + out.stderr
        if out.returncode != 0 and re.search(r"(ModuleNotFoundError|ImportError)", last["out"]):
            raise proc.image.fail(f"`{' '.join(argv)}` cannot import", last["out"])
        return out.returncode == 0

    try:
        proc.wait_for(ok, timeout, f"`{' '.join(argv)}` exiting 0", interval=0.5)
    except ImageError as exc:
        raise ImageError(f"{exc}\n--- last `{' '.join(argv)}` output ---\n{last['out'][-2000:]}") from None
    return last["out"]


def worker_processes_producer_burst(worker: Image, producer: Image, redis: RedisServer, count: int = BURST) -> str:
    """The worker image's CMD processes a burst the producer image sends, and the producer
    proves every record exists (``--wait-results``). Returns the producer's output."""
    env = {**redis.env, **FAST_WORK, "WORKER_METRICS_PORT": str(free_port())}
    w = worker.start(list(worker.dockerfile.cmd), env)
    try:
        wait_command_ok(w, WORKER_HEALTHCHECK, extra_env=env)
        burst = ["python", "-m", "apps.producer", "--count", str(count), "--rate", "0", "--wait-results", "90"]
        p = producer.start(burst, redis.env)
        try:
            deadline = time.monotonic() + 120
            while p.alive() and time.monotonic() < deadline:
                w.require_alive(" while the producer's burst was being processed")
                time.sleep(0.2)
            if p.alive():
                raise producer.fail(f"`{' '.join(burst)}` did not finish in 120s", p.output())
        finally:
            p.stop()
        output = p.output()
        if p.popen.returncode != 0 or f"all {count} results present" not in output:
            raise producer.fail(f"`{' '.join(burst)}` exited {p.popen.returncode} without proving {count} results",
                                output)
        w.require_alive(" after the burst")
    finally:
        w.stop()
    with redis.client() as client:
        records = [k for k in client.scan_iter("users:*", count=1000)]
    if len(records) != count:
        raise worker.fail(f"{len(records)} users:<id> records in Redis after a burst of {count}", w.output())
    return output


def producer_cmd_sends_and_is_healthy(producer: Image, redis: RedisServer) -> None:
    """The producer image's CMD (Deployment mode) sends tasks and passes its health command."""
    p = producer.start(list(producer.dockerfile.cmd), redis.env)
    try:
        wait_command_ok(p, PRODUCER_HEALTHCHECK, extra_env=redis.env)
        with redis.client() as client:
            p.wait_for(lambda: client.llen("celery") >= 1, 30, "a task in the queue")
        p.require_alive()
    finally:
        p.stop()


def producer_standby_is_healthy_and_silent(producer: Image, redis: RedisServer) -> None:
    """``--standby``: stays up, passes its health command, sends nothing."""
    with redis.client() as client:  # the session's server: an earlier test may have left tasks
        queued_before = client.llen("celery")
    # No /metrics: its default port (9809) is one per pod, and other tests run producers here too.
    p = producer.start(["python", "-m", "apps.producer", "--standby"], {**redis.env, "PRODUCER_METRICS_PORT": "0"})
    try:
        wait_command_ok(p, PRODUCER_HEALTHCHECK, extra_env=redis.env)
        p.require_alive()
        with redis.client() as client:
            if client.llen("celery") != queued_before:
                raise producer.fail("--standby sent tasks", p.output())
    finally:
        p.stop()


def cache_api_serves_a_tag(cache_api: Image, redis: RedisServer, tag: str = "python") -> dict:
    """The cache API image's CMD serves a tag from its shipped dataset; /readyz and /healthz 200."""
    ports = local_ports(cache_api)
    cmd = list(cache_api.dockerfile.cmd)
    if "--port" not in cmd or int(cmd[cmd.index("--port") + 1]) not in ports:
        raise cache_api.fail(f"CMD {cmd} does not serve on a port the image EXPOSEs ({sorted(ports)})")
    http = ports[int(cmd[cmd.index("--port") + 1])]
    api = cache_api.start(remap_ports(cmd, ports), redis.env)
    base = f"http://127.0.0.1:{http}"

    def status(path: str) -> int:
        try:
            return httpx.get(base + path, timeout=5).status_code
        except httpx.HTTPError:
            return 0

    try:
        api.wait_for(lambda: status("/readyz") == 200, 60, "GET /readyz 200")
        got = {path: status(path) for path in ("/healthz", "/readyz")}
        response = httpx.get(f"{base}/github_stats/{tag}", timeout=10)
        if response.status_code != 200:
            raise cache_api.fail(f"GET /github_stats/{tag} -> {response.status_code} {response.text[:200]}",
                                 api.output())
        body = json.loads(response.content)
        if not (isinstance(body, list) and body and all(isinstance(r, dict) for r in body)):
            raise cache_api.fail(f"GET /github_stats/{tag} is not a list of records: {response.text[:200]}")
        api.require_alive()
    finally:
        api.stop()
    return {"statuses": got, "records": len(body)}
