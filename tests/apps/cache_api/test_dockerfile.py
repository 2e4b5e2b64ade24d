"""The image's contract (docs/contract.md), checked statically: no Docker engine here."""

from __future__ import annotations

import re

from tests.apps.cache_api.conftest import REPO_ROOT

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
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert ("USER", "10001:10001") in steps
    assert ("WORKDIR", "/app") in steps
    env = " ".join(rest for op, rest in steps if op == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "DATASET_DIR=/app/dataset" in env and "HOME=/tmp" in env
    assert steps[-1] == ("CMD", '["uvicorn", "apps.cache_api.main:app", "--host", "0.0.0.0", "--port", "8000"]')
    # Cached dependency layer: requirements copied and installed before the code.
    copies = [rest for op, rest in steps if op == "COPY"]
    assert copies[0].startswith("apps/cache_api/requirements.txt")
    install = next(i for i, (op, rest) in enumerate(steps) if op == "RUN" and "pip install" in rest)
    code = next(i for i, (op, rest) in enumerate(steps) if op == "COPY" and rest.startswith("apps/cache_api "))
    assert install < code
    assert ops.index("USER") > code  # root only while building
    assert any(rest.startswith("apps/cache_api/dataset /app/dataset") for rest in copies)
    # Every requirement pinned.
    reqs = (REPO_ROOT / "apps" / "cache_api" / "requirements.txt").read_text().split()
    assert reqs and all("==" in r for r in reqs)
