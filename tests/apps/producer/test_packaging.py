"""The worker and producer Dockerfiles' shape (tests/apps/images runs what they build)."""

from __future__ import annotations

import re

import pytest

from tests.apps.worker.helpers import REPO


@pytest.mark.parametrize("app, cmd", [
    ("worker", '["celery", "-A", "apps.worker.celery_app", "worker", "--loglevel=INFO"]'),
    ("producer", '["python", "-m", "apps.producer", "--forever", "--rate", "1"]'),
])
def test_dockerfile_contract(app, cmd):
    text = (REPO / "apps" / app / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert re.fullmatch(r"FROM python:3\.11-slim@sha256:[0-9a-f]{64}", lines[0]), lines[0]  # pinned by digest
    assert "USER 10001:10001" in lines
    assert "--uid 10001" in text and "--gid 10001" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text and "WORKDIR /app" in lines
    req = next(i for i, line in enumerate(lines) if "requirements.lock" in line and line.startswith("COPY"))
    assert lines[req + 1] == (f"RUN pip install --require-hashes --no-deps --only-binary=:all: "
                              f"-r /app/apps/{app}/requirements.lock")
    code = next(i for i, line in enumerate(lines) if line.startswith(f"COPY apps/{app} "))
    assert req < code, "dependency layer must come before the code"
    assert lines[-1] == f"CMD {cmd}"
    for line in (REPO / "apps" / app / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[0-9][^\s]*", line.strip()), line
