"""The cache API's replica sidecar survives its redis-server: run the rendered sidecar
command (the shell script from the manifest) with the real ``redis-server`` against a real
primary, kill the redis-server child, and check that the container's process stays up, its
probes keep passing, and redis-server comes back replicating.

Why it matters: a pod is ready only when every container is. If the sidecar's readiness
depended on redis-server answering, a failed replica would take the API pod out of the
Service although the API falls back to the primary. Only ``/tmp`` paths and the port are
adapted (a temp dir, a free port); the script is the manifest's, byte for byte otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from components.cache_api import SIDECAR_PORT
from tests.apps.redis_server import PASSWORD, REDIS_SERVER, RedisServer, free_port

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")
WAIT_SECONDS = 20.0


def _sidecar(rendered) -> dict:
    r = rendered("local", cacheApiReadPath="replica-sidecar")
    (api,) = [o for o in r.k8s_objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "cache-api"]
    (sidecar,) = [c for c in api["spec"]["template"]["spec"]["containers"] if c["name"] == "redis-replica"]
    return sidecar


def _wait(what: str, check: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


class Sidecar:
    def __init__(self, container: dict, workdir: Path, primary: RedisServer):
        self.port = free_port()
        adapt = lambda text: text.replace("/tmp", str(workdir)).replace(f"--port {SIDECAR_PORT}", f"--port {self.port}")  # noqa: E731
        assert container["command"][:2] == ["sh", "-c"]
        self.script = adapt(container["command"][2])
        assert self.script.count(str(workdir)) >= 3 and f"--port {self.port}" in self.script
        self.probes = {name: [adapt(a) for a in container[name]["exec"]["command"]]
                       for name in ("livenessProbe", "readinessProbe")}
        env_names = {e["name"] for e in container["env"]}
        assert env_names == {"REDIS_PRIMARY_HOST", "REDIS_PRIMARY_PORT", "REDIS_PASSWORD", "REDISCLI_AUTH"}
        self.env = {"PATH": os.environ["PATH"], "REDIS_PASSWORD": PASSWORD, "REDISCLI_AUTH": PASSWORD,
                    "REDIS_PRIMARY_HOST": "127.0.0.1", "REDIS_PRIMARY_PORT": str(primary.port)}
        self.log = workdir / "sidecar.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(["sh", "-c", self.script], env=self.env, stdout=log, stderr=log,
                                         start_new_session=True)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=PASSWORD, socket_timeout=1)

    def replicating(self) -> bool:
        with self.client() as c:
            return c.info("replication").get("master_link_status") == "up"

    def probe(self, name: str) -> int:
        return subprocess.run(self.probes[name], env=self.env, capture_output=True, timeout=5).returncode

    def server_pid(self) -> int | None:
        kids = _children(self.proc.pid)
        servers = [p for p in kids if "redis-server" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
        return servers[0] if servers else None

    def stop(self) -> None:
        """Kill the shell and every redis-server it started: they share its process group
        (once the shell is gone its children belong to init, and ``pgrep -P`` finds none)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(workdir=tmp_path / "primary").start()
    yield server
    server.stop()


@pytest.fixture
def sidecar(rendered, tmp_path: Path, primary: RedisServer) -> Iterator[Sidecar]:
    workdir = tmp_path / "sidecar"
    workdir.mkdir()
    s = Sidecar(_sidecar(rendered), workdir, primary)
    s.start()
    yield s
    s.stop()


def test_sidecar_survives_its_redis_server(sidecar: Sidecar, primary: RedisServer):
    _wait("the replica to sync with the primary", sidecar.replicating)
    with primary.client() as p:
        p.set("before", "1")
    _wait("'before' on the replica", lambda: sidecar.client().get("before") == b"1")
    assert sidecar.probe("livenessProbe") == 0 and sidecar.probe("readinessProbe") == 0

    first = sidecar.server_pid()
    assert first is not None, "no redis-server child of the sidecar's shell"
    os.kill(first, signal.SIGKILL)
    _wait("the killed redis-server to be gone", lambda: sidecar.server_pid() != first)
    # redis-server is down (restarted a second later): the container's process is not,
    # and neither probe fails
    assert sidecar.proc.poll() is None, sidecar.log.read_text()
    assert sidecar.probe("livenessProbe") == 0 and sidecar.probe("readinessProbe") == 0

    _wait("a new redis-server", lambda: sidecar.server_pid() not in (None, first))
    _wait("the new replica to sync", sidecar.replicating)
    with primary.client() as p:
        p.set("after", "2")
    _wait("'after' on the new replica", lambda: sidecar.client().get("after") == b"2")
    assert sidecar.client().get("before") == b"1"  # full resync brought the old data too
    assert sidecar.proc.poll() is None
    assert sidecar.probe("livenessProbe") == 0 and sidecar.probe("readinessProbe") == 0
    assert "restarting in 1 s" in sidecar.log.read_text()


def test_sidecar_stops_cleanly_on_sigterm(sidecar: Sidecar):
    _wait("the replica to sync with the primary", sidecar.replicating)
    server = sidecar.server_pid()
    assert server is not None
    sidecar.proc.send_signal(signal.SIGTERM)  # what the kubelet sends on pod deletion
    assert sidecar.proc.wait(timeout=10) == 0
    assert not Path(f"/proc/{server}").exists() or "zombie" in Path(f"/proc/{server}/status").read_text().lower()


def test_probes_fail_when_the_supervisor_is_gone(sidecar: Sidecar):
    """The probes can fail: with the supervising shell dead (the container would be too),
    they report it."""
    _wait("the pid file", lambda: sidecar.probe("livenessProbe") == 0)
    sidecar.stop()
    assert sidecar.probe("livenessProbe") != 0 and sidecar.probe("readinessProbe") != 0
