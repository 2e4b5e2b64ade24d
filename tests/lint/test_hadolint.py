"""hadolint on every Dockerfile of the tree (.hadolint.yaml: every severity fails, base images from
Docker Hub only): clean with nothing ignored, and a seeded defect fails naming rule and line."""

from __future__ import annotations

import pytest

from tests.lint import inventory, linters

WORKER = "apps/worker/Dockerfile"


def test_every_dockerfile_is_clean():
    files = inventory.dockerfiles()
    assert {"apps/cache_api/Dockerfile", "apps/producer/Dockerfile", WORKER} <= set(files), files
    found = linters.hadolint(files)
    assert not found, "hadolint:\n  " + "\n  ".join(map(str, found))


@pytest.mark.parametrize("rule, old, new", [
    ("DL3002", "USER 10001:10001", "USER root"),                                     # runs as root
    ("DL3026", "FROM python:3.11-slim@", "FROM ghcr.io/example/python:3.11-slim@"),  # untrusted registry
    ("DL3013", "USER 10001:10001", "RUN pip install flask\nUSER 10001:10001"),       # unpinned pip install
], ids=["root-user", "untrusted-registry", "unpinned-pip-install"])
def test_seeded_dockerfile_defect_fails_naming_rule_and_line(seeded, rule, old, new):
    seeded.copy(WORKER, ".hadolint.yaml")
    seeded.replace(WORKER, old, new)
    first = new.splitlines()[0]
    line = next(n for n, text in enumerate((seeded.root / WORKER).read_text().splitlines(), 1) if first in text)
    found = linters.hadolint([WORKER], cwd=seeded.root, config=seeded.root / ".hadolint.yaml")
    assert (WORKER, line, rule) in {(f.path, f.line, f.rule) for f in found}, found
