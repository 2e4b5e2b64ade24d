"""Real monitoring processes for the tests: redis_exporter and Prometheus on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.apps.redis_server import free_port
from tests.apps.worker.helpers import wait_for


def http_get(url: str, timeout: float = 3.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode()
    except (OSError, urllib.error.URLError):
        return None


def parse_samples(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` from a /metrics page (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@dataclass
class Process:
    """A child process with its output in a log file; stopped (and reaped) by ``stop``."""

    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            self._log.close()
            self.proc = None


@dataclass
class RedisExporterProcess:
    """redis_exporter configured only through its environment, like the Deployment."""

    binary: str
    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> RedisExporterProcess:
        env = {**self.env, "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{self.port}"}
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = Process([self.binary], env, self.workdir / f"redis-exporter-{self.port}.log").start()
        wait_for(lambda: http_get(f"http://127.0.0.1:{self.port}/health") or not self.process.alive(), 15,
                 message="redis_exporter /health")
        assert self.process.alive(), self.process.output()
        return self

    def samples(self) -> dict[str, float]:
        text = http_get(self.url, timeout=10)
        assert text is not None, f"no /metrics from redis_exporter:\n{self.process.output() if self.process else ''}"
        return parse_samples(text)

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@dataclass
class PrometheusProcess:
    """``prometheus`` with a generated config, its TSDB in ``workdir``, on a loopback port."""

    binary: str
    config: Path
    workdir: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusProcess:
        argv = [self.binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h",
                "--log.level=warn"]
        self.process = Process(argv, {"PATH": "/usr/bin:/bin"}, self.workdir / "prometheus.log").start()
        wait_for(lambda: http_get(f"{self.url}/-/ready") or not self.process.alive(), 30, message="prometheus ready")
        assert self.process.alive(), self.process.output()
        return self

    def api(self, path: str, **params: str) -> dict:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:  # 400 with a JSON error body (bad query)
            return json.loads(err.read() or b"{}")

    def query(self, expr: str, at: float | None = None) -> dict:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)

    def value(self, expr: str) -> float | None:
        """The single value of an instant query, or None when it returns nothing."""
        data = self.query(expr)
        assert data.get("status") == "success", data
        result = data["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self.process:
            self.process.stop()
