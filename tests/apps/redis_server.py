"""A real ``redis-server`` for the app tests: random loopback port, plain or TLS.

Tests start and stop servers themselves; nothing here mocks Redis.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server")
PASSWORD = "test-password-not-a-secret"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost (openssl CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return TlsFiles(ca=ca, cert=cert, key=key)


@dataclass
class RedisServer:
    """One redis-server process bound to 127.0.0.1 on a port picked here."""

    workdir: Path
    tls: TlsFiles | None = None
    password: str = PASSWORD
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """The DESIGN.md environment contract pointing at this server."""
        env = {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.port),
            "REDIS_PASSWORD": self.password,
            "REDIS_TLS": "true" if self.tls else "false",
            "REDIS_DB": "0",
        }
        if self.tls:
            env["REDIS_CA_FILE"] = str(self.tls.ca)
        return env

    def client(self, **kwargs) -> redis.Redis:
        extra = {}
        if self.tls:
            extra = {"ssl": True, "ssl_ca_certs": str(self.tls.ca), "ssl_cert_reqs": "required"}
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **extra, **kwargs)

    def start(self, timeout: float = 10.0) -> "RedisServer":
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server not found: install it (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.workdir), "--requirepass", self.password, "--protected-mode", "yes"]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert),
                     "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca),
                     "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.client(socket_timeout=1) as c:
                    c.ping()
                return self
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
