"""Finding the monitoring binaries (Debian: prometheus, promtool, prometheus-redis-exporter)."""

from __future__ import annotations

import os
import shutil

import pytest

#: Debian's prometheus-redis-exporter installs the binary as prometheus-redis-exporter;
#: upstream releases call it redis_exporter.
ALIASES = {"redis_exporter": ("redis_exporter", "prometheus-redis-exporter")}


def find_tool(name: str) -> str | None:
    for candidate in ALIASES.get(name, (name,)):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def require_tool(name: str) -> str:
    """The tool's path; without it, fail under CI=true (make setup installs it) and skip locally."""
    found = find_tool(name)
    if found:
        return found
    message = f"{name} not found: run `make setup` (it says how to install prometheus and prometheus-redis-exporter)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)
