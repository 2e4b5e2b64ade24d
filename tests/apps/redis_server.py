"""A real ``redis-server`` for the app tests: random loopback port, one of the server
profiles of tests/apps/redis_profiles.py (``local``, ``azure-cache``, ``azure-managed``).

Tests start and stop servers themselves; nothing here mocks Redis. Every server is
watched by the command audit (tests/apps/command_audit.py): the apps connect over TCP
to 127.0.0.1 (``env``), the tests' own clients over a Unix socket (``client()``, not audited).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.apps.command_audit import AUDIT, CommandAudit, Monitor
from tests.apps.redis_profiles import PROFILES, Profile

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

    # Valid from an hour ago, as public CAs backdate notBefore (Let's Encrypt by an hour, and
    # Azure's certificates are months old): a client whose clock is behind still verifies
    # (tests/apps/worker/test_clock_skew.py). Debian's faketime runs openssl an hour back.
    faketime = shutil.which("faketime")
    if faketime is None:
        raise RuntimeError("faketime not found: install Debian's 'faketime' package (make setup does)")

    def run(*args: str) -> None:
        # Once in a fresh-clone CI run `openssl x509 -req` under faketime exited 1 (every TLS
        # test of that xdist worker errored); not reproduced in 180 runs. Say why, and try again.
        for _attempt in range(3):
            out = subprocess.run([faketime, "-f", "-1h", "openssl", *args], capture_output=True, text=True)
            if out.returncode == 0:
                return
        raise RuntimeError(f"openssl {args[0]} (under faketime) failed 3 times, exit {out.returncode}: "
                           f"{out.stderr.strip()[-1000:]}")

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
        "-keyout", str(ca_key), "-out", str(ca))
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", str(key), "-out", str(csr))
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return TlsFiles(ca=ca, cert=cert, key=key)


@dataclass
class RedisServer:
    """One redis-server process: TCP on 127.0.0.1 and a port picked here (the apps), and a
    Unix socket (the harness: its commands are not audited).

    ``profile`` decides TLS and the command surface; ``tls`` must be given for a TLS
    profile. A plain server may also be given ``tls`` (TLS only, no Azure restrictions).
    """

    workdir: Path
    tls: TlsFiles | None = None
    password: str = PASSWORD
    port: int = field(default_factory=free_port)
    profile: Profile = PROFILES["local"]
    audit: CommandAudit | None = field(default_factory=lambda: AUDIT)
    proc: subprocess.Popen | None = None
    monitor: Monitor | None = None
    #: Short path (Unix socket paths are limited to ~100 bytes), removed by stop().
    socket_dir: Path | None = None
    #: More redis.conf directives, e.g. ``{"maxmemory": "8mb", "maxclients": "40"}``: the
    #: azure profiles refuse CONFIG, so a limit is set when the server starts, as Azure sets it.
    settings: dict[str, str] = field(default_factory=dict)
    #: The profile's disabled admin commands, kept for the harness under this prefix
    #: (tests/apps/redis_profiles.py): ``admin("CONFIG", "SET", ...)``.
    admin_alias: str | None = None

    def __post_init__(self) -> None:
        if self.profile.tls and self.tls is None:
            raise ValueError(f"profile {self.profile.name!r} is TLS only: pass tls=TlsFiles")

    @property
    def env(self) -> dict[str, str]:
        """The environment contract (docs/contract.md) pointing at this server."""
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

    @property
    def unix_socket(self) -> Path:
        if self.socket_dir is None:
            self.socket_dir = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))
        return self.socket_dir / "redis.sock"

    def tcp_client_kwargs(self) -> dict:
        """What an app uses: TCP to 127.0.0.1, TLS verified against the test CA."""
        kwargs: dict = {"host": "127.0.0.1", "port": self.port, "password": self.password}
        if self.tls:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca), ssl_cert_reqs="required")
        return kwargs

    def client(self, **kwargs) -> redis.Redis:
        """The test harness's client, over the Unix socket: not audited."""
        return redis.Redis(unix_socket_path=str(self.unix_socket), password=self.password, **kwargs)

    def admin(self, command: str, *args, password: str | None = None):
        """An admin command the profile may refuse the apps (``CONFIG``, ``ACL``), over the
        harness's socket, through the alias when the server has one; ``password`` when the
        harness's own has just been replaced."""
        name = f"{self.admin_alias}{command}" if self.admin_alias and command.upper() in \
            self.profile.disabled_commands() else command
        with redis.Redis(unix_socket_path=str(self.unix_socket), password=password or self.password) as c:
            return c.execute_command(name, *args)

    def config_lines(self) -> list[str]:
        lines = ["bind 127.0.0.1", f"unixsocket {self.unix_socket}", "unixsocketperm 700", 'save ""',
                 "appendonly no", f"dir {self.workdir}", "protected-mode yes"]
        if self.tls:
            lines += ["port 0", f"tls-port {self.port}", f"tls-cert-file {self.tls.cert}",
                      f"tls-key-file {self.tls.key}", f"tls-ca-cert-file {self.tls.ca}", "tls-auth-clients no"]
        else:
            lines.append(f"port {self.port}")
        lines += [f"{name} {value}" for name, value in self.settings.items()]
        return lines + self.profile.config_lines(self.password, self.admin_alias)

    def start(self, timeout: float = 10.0, loaded: bool = True) -> RedisServer:
        """Start and wait until it answers ``PING``; with ``loaded=False`` also return while
        it is still loading its data (it answers ``LOADING``), for tests of that state."""
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server not found: install it (apt-get install redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "redis.conf"
        conf.write_text("\n".join(self.config_lines()) + "\n")
        self.proc = subprocess.Popen([REDIS_SERVER, str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                # No hidden retries: redis-py would back off on a LOADING reply to its handshake.
                with self.client(socket_timeout=1, retry=Retry(NoBackoff(), 0)) as c:
                    c.ping()
                break
            except redis.BusyLoadingError:
                if not loaded:
                    break
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server ({self.profile.name}) still loading after {timeout}s") from None
                time.sleep(0.05)
            except redis.RedisError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server ({self.profile.name}) did not start on port {self.port}") from None
                time.sleep(0.05)
        if self.audit is not None:  # before any app connects
            self.monitor = Monitor({"unix_socket_path": str(self.unix_socket), "password": self.password},
                                   self.profile.name, self.audit)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.monitor is not None:
            self.monitor.close()
            self.monitor = None

    def cleanup(self) -> None:
        """Stop, and remove the socket directory (a restart after this makes a new one)."""
        self.stop()
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None

    def restart(self) -> None:
        self.stop()
        self.start()
