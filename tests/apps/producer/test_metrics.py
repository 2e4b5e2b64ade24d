"""The producer's /metrics (PRODUCER_METRICS_PORT): served by the long-running modes only."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request

from tests.apps.redis_server import free_port
from tests.apps.worker.helpers import REPO, clean_env, wait_for

PY = sys.executable


def _scrape(port: int) -> str | None:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_forever_mode_counts_what_it_sends(redis_server, tmp_path):
    port = free_port()
    env = clean_env(**redis_server.env, PRODUCER_METRICS_PORT=str(port),
                    PRODUCER_HEARTBEAT_FILE=str(tmp_path / "hb.json"))
    proc = subprocess.Popen([PY, "-m", "apps.producer", "--forever", "--rate", "50"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        text = wait_for(lambda: (t := _scrape(port)) and _sample(t, "producer_tasks_sent_total") >= 10 and t,
                        20, message="producer_tasks_sent_total >= 10")
        assert _sample(text, "producer_publish_errors_total") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, proc.stderr.read().decode()
        proc.stderr.close()
    with redis_server.client() as c:
        assert c.llen("celery") >= _sample(text, "producer_tasks_sent_total")


def test_a_count_burst_serves_no_metrics(redis_server):
    """A burst run with kubectl exec next to the Deployment's process must not take its port."""
    port = free_port()
    with socket.socket() as holder:  # the long-running process already listens there
        holder.bind(("127.0.0.1", port))
        holder.listen()
        env = clean_env(**redis_server.env, PRODUCER_METRICS_PORT=str(port))
        out = subprocess.run([PY, "-m", "apps.producer", "--count", "5", "--rate", "0"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with redis_server.client() as c:
        assert c.llen("celery") == 5
