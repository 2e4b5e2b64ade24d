"""The image's contract (docs/contract.md), checked statically: no Docker engine here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from tests.apps.cache_api.conftest import REPO_ROOT
from tests.apps.redis_server import free_port

DOCKERFILE = REPO_ROOT / "apps" / "cache_api" / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_follows_the_contract():
    steps = _instructions()
    ops = [op for op, _ in steps]
    assert steps[0][0] == "FROM" and re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", steps[0][1]), steps[0]
    assert ("USER", "10001:10001") in steps
    assert ("WORKDIR", "/app") in steps
    env = " ".join(rest for op, rest in steps if op == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "DATASET_DIR=/app/dataset" in env and "HOME=/tmp" in env
    assert steps[-1][0] == "CMD"
    assert json.loads(steps[-1][1])[:6] == ["uvicorn", "apps.cache_api.main:app", "--host", "0.0.0.0", "--port", "8000"]
    # Cached dependency layer: requirements copied and installed before the code.
    copies = [rest for op, rest in steps if op == "COPY"]
    assert copies[0] == "apps/cache_api/requirements.lock /app/apps/cache_api/requirements.lock"
    install = next(i for i, (op, rest) in enumerate(steps) if op == "RUN" and "pip install" in rest)
    code = next(i for i, (op, rest) in enumerate(steps) if op == "COPY" and rest.startswith("apps/cache_api "))
    assert install < code
    assert ops.index("USER") > code  # root only while building
    assert any(rest.startswith("apps/cache_api/dataset /app/dataset") for rest in copies)
    assert ("RUN", "pip install --require-hashes --no-deps --only-binary=:all: "
                   "-r /app/apps/cache_api/requirements.lock") in steps
    # Every requirement pinned.
    text = (REPO_ROOT / "apps" / "cache_api" / "requirements.txt").read_text()
    reqs = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert reqs and all("==" in r for r in reqs)


RO_WRAPPER = r"""
for d in /*; do
  case "$d" in /tmp|/proc|/sys|/dev|/mnt) continue ;; esac
  if [ -d "$d" ] && [ ! -L "$d" ]; then
    mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" || exit 97
  fi
done
# The checkout itself may live under /tmp (CI clones there): make it read-only too.
mount --bind "$REPO_DIR" "$REPO_DIR" && mount -o remount,bind,ro "$REPO_DIR" || exit 96
touch "$PROBE" 2>/dev/null && exit 98
exec "$@"
"""


def _can_unshare() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


def test_runs_with_only_tmp_writable(redis_server):
    """The pod's read-only root filesystem, approximated: every top-level directory but /tmp
    (and the kernel's) bind-mounted read-only in a private mount namespace."""
    if not _can_unshare():
        pytest.skip("needs unshare -m (root or user namespaces)")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp", "PYTHONDONTWRITEBYTECODE": "1",
           "PROBE": str(REPO_ROOT / ".rofs-probe"), "REPO_DIR": str(REPO_ROOT), **redis_server.env}
    proc = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", RO_WRAPPER, "sh",
         sys.executable, "-m", "uvicorn", "apps.cache_api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/readyz").status_code == 200
        response = httpx.get(f"{base}/github_stats/python")  # the shipped sample, loaded read-only
        assert response.status_code == 200 and len(response.json()) == 50
        assert httpx.get(f"{base}/github_stats/python?sort=forks&limit=2").status_code == 200
        assert "dataset_loads_total 1.0" in httpx.get(f"{base}/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stderr.close()
    assert not (REPO_ROOT / ".rofs-probe").exists()
