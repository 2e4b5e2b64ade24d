"""A credential that changes under a running fleet, on every Redis profile: real worker
processes (busy), the sweeper and a ``--forever`` producer, each reading the password from a
file (``REDIS_PASSWORD_FILE``, as the pods read the mounted redis-auth Secret).

- ``token``: an ACL user whose password rotates as an Entra token is renewed: the new one
  added, the old one removed, the user's connections closed (its token expired); the file
  still holds the old one for a while, then the new one.
- ``key``: the access key replaced (the default user's password: ``requirepass``, or the ACL
  default user on azure-cache), every app connection killed, the file updated later.

While the old credential fails every process stays live and says why (``auth``, in its
heartbeat and its metrics), a SIGTERM ends a busy worker at once, and once the file holds the
new credential the fleet works again by itself: no restart, no task lost.

Before (Celery's event heartbeat and Gossip on, the password from the environment): a busy
worker's heartbeat went 39.7 s stale and it ignored SIGTERM for more than 30 s, every process
said ``connection``, and none could take the new password without a restart.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from apps.worker.healthcheck import check
from tests.apps.redis_profiles import PROFILE_NAMES
from tests.apps.redis_server import free_port
from tests.apps.worker.helpers import REPO, Worker, clean_env, wait_for

pytestmark = pytest.mark.slow

OLD, NEW = "old-credential-not-a-secret", "new-credential-not-a-secret"
USER = "app"
ALIAS = "harness-"
AUTH_WINDOW_S = 8.0       # the old credential refused, the file not yet updated
HEARTBEAT_MAX_AGE_S = 15  # the worst heartbeat age allowed (the pods' probe: 30 s)
SIGTERM_EXIT_S = 10.0     # a busy worker told to stop while Redis refuses its credential
RECOVERY_S = 30.0         # back to work after the file holds the new credential


def _apps_env(server, secret: Path, kind: str) -> dict[str, str]:
    env = {k: v for k, v in server.env.items() if k != "REDIS_PASSWORD"}
    env["REDIS_PASSWORD_FILE"] = str(secret)
    if kind == "token":
        env["REDIS_USERNAME"] = USER
    return env


def _kill_app_connections(server, password: str) -> None:
    """Every TCP client (the apps); the harness's socket and the command audit stay."""
    clients = server.admin("CLIENT", "LIST", "TYPE", "normal", password=password)
    for line in clients.decode().splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("addr", "").startswith("127.0.0.1:"):
            server.admin("CLIENT", "KILL", "ID", fields["id"], password=password)


def _rotate(server, kind: str) -> None:
    if kind == "token":  # renewal: the new token first, then the old one gone, its connections closed
        server.admin("ACL", "SETUSER", USER, f">{NEW}")
        server.admin("ACL", "SETUSER", USER, f"<{OLD}")
        server.admin("CLIENT", "KILL", "USER", USER)
        return
    if server.profile.denied_subcommands():  # the password is the ACL default user's
        server.admin("ACL", "SETUSER", "default", "resetpass", f">{NEW}")
    else:
        server.admin("CONFIG", "SET", "requirepass", NEW)
    _kill_app_connections(server, NEW)


class Process:
    """A long-running app process with a heartbeat file (sweeper, producer)."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path, name: str, heartbeat_var: str):
        self.heartbeat = workdir / f"{name}.heartbeat.json"
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, *argv], cwd=REPO,
                                     env=clean_env(**env, **{heartbeat_var: str(self.heartbeat)}),
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def beat(self) -> dict:
        try:
            return json.loads(self.heartbeat.read_text())
        except (OSError, ValueError):
            return {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


def _metric(port: int, name: str, reason: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines()
               if line.startswith(name + "{") and f'reason="{reason}"' in line)


@pytest.mark.parametrize("kind", ["token", "key"])
@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_a_credential_that_changes_under_a_busy_fleet(redis_factory, tmp_path, profile, kind):
    server = redis_factory(profile=profile, admin_alias=ALIAS)
    secret = tmp_path / "redis-auth" / "password"
    secret.parent.mkdir()
    if kind == "token":
        denied = [f"-{sub}" for sub in server.profile.denied_subcommands()]
        server.admin("ACL", "SETUSER", USER, "on", f">{OLD}", "~*", "&*", "+@all", *denied)
        secret.write_text(OLD)
    else:
        secret.write_text(server.password)
    env = _apps_env(server, secret, kind)
    work = {"WORK_SECONDS_MIN": "1", "WORK_SECONDS_MAX": "1", "CELERY_VISIBILITY_TIMEOUT": "15"}
    metrics_port = free_port()
    busy = Worker({**env, **work, "WORKER_METRICS_PORT": str(metrics_port)}, tmp_path / "w", concurrency=2)
    stopped = Worker({**env, **work}, tmp_path / "w", concurrency=2)
    sweeper = producer = None
    try:
        for worker in (busy, stopped):
            worker.start()
        for worker in (busy, stopped):
            worker.wait_ready(60)
        sweeper = Process(["-m", "apps.worker.sweeper"], {**env, **work}, tmp_path, "sweeper",
                          "WORKER_HEARTBEAT_FILE")
        producer = Process(["-m", "apps.producer", "--forever", "--rate", "4"],
                           {**env, "PRODUCER_METRICS_PORT": "0"}, tmp_path, "producer", "PRODUCER_HEARTBEAT_FILE")
        wait_for(lambda: busy.beat() and busy.beat().get("active") and stopped.beat().get("active"), 30,
                 interval=0.2, message="both workers busy")
        pids = {w.name: w.pid for w in (busy, stopped)}

        _rotate(server, kind)
        rotated = time.monotonic()
        reasons: dict[str, set] = {"worker": set(), "sweeper": set(), "producer": set()}
        last: dict[str, str | None] = {}
        worst_age, live_failures, exit_s = 0.0, [], None
        while time.monotonic() - rotated < AUTH_WINDOW_S:
            now = time.time()
            beat = busy.beat() or {}
            worst_age = max(worst_age, now - float(beat.get("ts", now)))
            ok, message = check(busy.heartbeat, 30.0, now=now)
            if not ok:
                live_failures.append(message)
            for name, waiting in (("worker", beat.get("waiting_for_redis")),
                                  ("sweeper", sweeper.beat().get("waiting_for_redis")),
                                  ("producer", producer.beat().get("waiting"))):
                if waiting:
                    reasons[name].add(waiting.get("reason"))
                    last[name] = f"{waiting.get('reason')}: {waiting.get('detail', '')}"
            if exit_s is None and time.monotonic() - rotated > 2:
                stopped.terminate()  # what the kubelet sends a pod it scales in
                started = time.monotonic()
                try:
                    stopped.wait(SIGTERM_EXIT_S)
                    exit_s = time.monotonic() - started
                except subprocess.TimeoutExpired:
                    exit_s = float("inf")
            time.sleep(0.3)
        assert not live_failures, live_failures[:3]
        assert worst_age < HEARTBEAT_MAX_AGE_S, f"the busy worker's heartbeat went {worst_age:.1f} s stale"
        assert exit_s is not None and exit_s < SIGTERM_EXIT_S, \
            f"a busy worker took {exit_s:.1f} s to exit on SIGTERM (refused credential)"
        # The kill itself may first read as a closed connection; then it is the credential.
        assert all("auth" in seen for seen in reasons.values()), reasons
        assert all(v.startswith("auth:") for v in last.values()) and len(last) == 3, last
        assert _metric(metrics_port, "celery_worker_redis_unavailable_total", "auth") > 0

        secret.write_text(NEW + "\n")  # the kubelet's update of the mounted Secret
        updated = time.monotonic()
        wait_for(lambda: busy.ready() and sweeper.beat().get("waiting_for_redis") is None
                 and not producer.beat().get("waiting"), RECOVERY_S, interval=0.2, message="the fleet back")
        recovered_s = time.monotonic() - updated
        sent_before = int(producer.beat().get("sent", 0))
        wait_for(lambda: int(producer.beat().get("sent", 0)) > sent_before, 15, message="the producer sending again")
        producer.proc.send_signal(signal.SIGTERM)
        assert producer.proc.wait(timeout=20) == 0, producer.log()[-2000:]
        sent = int(producer.beat()["sent"])

        # Nothing lost: every task sent is done (the stopped worker's, redelivered by the sweep).
        harness = NEW if kind == "key" else server.password
        with redis.Redis(unix_socket_path=str(server.unix_socket), password=harness) as c:
            wait_for(lambda: c.llen("celery") == 0 and len(list(c.scan_iter("users:*", count=1000))) >= sent,
                     90, interval=0.5, message=f"all {sent} tasks done")
        assert busy.alive() and busy.pid == pids[busy.name], "the busy worker restarted"
        assert sweeper.proc.poll() is None, sweeper.log()[-2000:]
        assert "Pool process" not in busy.log() and "Unrecoverable error" not in busy.log()
        for log in (busy.log(), stopped.log(), sweeper.log(), producer.log()):
            assert OLD not in log and NEW not in log and server.password not in log
        print(f"{profile}/{kind}: worst heartbeat age {worst_age:.1f} s, SIGTERM exit {exit_s:.1f} s, "
              f"recovered {recovered_s:.1f} s after the file changed, {sent} tasks sent, none lost")
    finally:
        for proc in (producer, sweeper):
            if proc is not None:
                proc.close()
        for worker in (busy, stopped):
            worker.kill()
            worker.close()


def test_a_wrong_password_at_start_says_auth_and_how_to_fix_it(redis_any, tmp_path):
    """A wrong credential at start: each process stays live and not ready, says ``auth`` in its
    probe, and logs one line at once naming the problem and the fix (never the password);
    then, once the file holds the right one, works without a restart.

    Live rather than exiting: the fix is a Secret update the running process reads on its next
    attempt (seconds), where an exit would put the pod in CrashLoopBackOff for up to 5 minutes
    after the fix, and a token refused for a moment would restart the fleet."""
    secret = tmp_path / "redis-auth" / "password"
    secret.parent.mkdir()
    wrong = "wrong-credential-not-a-secret"
    secret.write_text(wrong)
    env = _apps_env(redis_any, secret, "key")
    worker = Worker({**env, "WORK_SECONDS_MIN": "0", "WORK_SECONDS_MAX": "0"}, tmp_path / "w").start()
    producer = Process(["-m", "apps.producer", "--forever", "--rate", "2"], {**env, "PRODUCER_METRICS_PORT": "0"},
                       tmp_path, "producer", "PRODUCER_HEARTBEAT_FILE")
    try:
        wait_for(lambda: ((worker.beat() or {}).get("waiting_for_redis") or {}).get("reason") == "auth"
                 and (producer.beat().get("waiting") or {}).get("reason") == "auth", 30,
                 message="both waiting, reason auth")
        live, _ = check(worker.heartbeat, 30.0)
        ready, why = check(worker.heartbeat, 30.0, ready=True)
        assert live and not ready and "waiting for Redis (auth)" in why, why
        for log in (worker.log(), producer.log()):
            lines = [line for line in log.splitlines() if "Redis refused the credential" in line]
            assert len(lines) == 1 and "ERROR" in lines[0] and "REDIS_PASSWORD_FILE" in lines[0], log[-2000:]
            assert wrong not in log and redis_any.password not in log
        pid = worker.pid
        secret.write_text(redis_any.password)  # the Secret fixed
        fixed = time.monotonic()
        wait_for(lambda: worker.ready() and not producer.beat().get("waiting"), RECOVERY_S, interval=0.2,
                 message="working once the file holds the right password")
        assert worker.alive() and worker.pid == pid and producer.proc.poll() is None
        print(f"{redis_any.profile.name}: working {time.monotonic() - fixed:.1f} s after the fix, no restart")
    finally:
        producer.close()
        worker.kill()
        worker.close()
