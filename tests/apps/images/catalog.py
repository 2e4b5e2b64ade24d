"""Which Dockerfile builds which image: read from the Makefile's `images` target (the build
everyone runs), with the references components/versions.py deploys (tests/test_contract.py
keeps the two in step)."""

from __future__ import annotations

import re
from pathlib import Path

from components import versions

REPO = Path(__file__).resolve().parents[3]
_BUILD = re.compile(r"docker build -f (\S+) -t \$\((\w+)\) \.")


def dockerfiles_by_image(makefile: Path = REPO / "Makefile") -> dict[str, Path]:
    """``{image ref: Dockerfile}`` for every image `make images` builds."""
    found = {getattr(versions, var): REPO / path for path, var in _BUILD.findall(makefile.read_text())}
    if not found:
        raise AssertionError(f"no `docker build -f <Dockerfile> -t $(VAR) .` line in {makefile}")
    return found
