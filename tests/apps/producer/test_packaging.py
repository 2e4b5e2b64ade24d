"""The images' promises that can be checked without Docker."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.apps.worker.helpers import REPO, clean_env


def test_producer_runs_without_the_worker_package(redis_server, tmp_path):
    """The producer image ships only apps/producer and apps/common: it must not import apps.worker."""
    for package in ("producer", "common"):
        shutil.copytree(REPO / "apps" / package, tmp_path / "apps" / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    env = clean_env(**redis_server.env)
    env["PYTHONPATH"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-m", "apps.producer", "--count", "3", "--rate", "0"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    with redis_server.client() as c:
        assert c.llen("celery") == 3


@pytest.mark.parametrize("app, cmd", [
    ("worker", '["celery", "-A", "apps.worker.celery_app", "worker", "--loglevel=INFO"]'),
    ("producer", '["python", "-m", "apps.producer", "--forever", "--rate", "1"]'),
])
def test_dockerfile_contract(app, cmd):
    text = (REPO / "apps" / app / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert "USER 10001:10001" in lines
    assert "--uid 10001" in text and "--gid 10001" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text and "WORKDIR /app" in lines
    req = next(i for i, line in enumerate(lines) if "requirements.txt" in line and line.startswith("COPY"))
    code = next(i for i, line in enumerate(lines) if line.startswith(f"COPY apps/{app} "))
    assert req < code, "dependency layer must come before the code"
    assert lines[-1] == f"CMD {cmd}"
    for line in (REPO / "apps" / app / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[0-9][^\s]*", line.strip()), line
