"""The build context an image sees, and its COPY steps applied to a directory standing in for
the image's ``/``.

Which files the builder receives is decided by the .dockerignore patterns, matched with
Docker's own Python SDK (``docker.utils.build.PatternMatcher``, a port of moby's matcher:
last matching pattern wins, ``!`` re-includes, ``**`` spans directories, a matched
directory takes its contents along).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from docker.utils.build import PatternMatcher


class ContextError(ValueError):
    """A COPY source the builder would not have (missing, or excluded by .dockerignore)."""


def read_ignore_file(path: Path | None) -> list[str]:
    """Patterns of a .dockerignore, as Docker reads them (blank lines and ``#`` comments dropped)."""
    if path is None:
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.strip().startswith("#")]


def sent_paths(context: Path, ignore_file: Path | None) -> set[str]:
    """Every path (file or directory, POSIX, relative to ``context``) the builder receives."""
    return set(PatternMatcher(read_ignore_file(ignore_file)).walk(str(context)))


def copy_into(root: Path, context: Path, sent: set[str], src: str, dst: str) -> list[str]:
    """Apply ``COPY src dst`` to ``root`` (the image's ``/``); returns the image paths written.

    As Docker does: a directory source copies its contents (what the context holds of
    them) into ``dst``; a file source lands at ``dst``, or inside it when ``dst`` ends in ``/``.
    """
    below = sorted(p for p in sent if p.startswith(src + "/"))
    if src not in sent and not below:
        raise ContextError(f"COPY {src} {dst}: {src!r} is not in the build context "
                           f"(missing, or excluded by .dockerignore)")
    host_src = context / src
    target = root / dst.strip("/")
    written = []
    if host_src.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        for rel in below:
            source, dest = context / rel, target / rel[len(src) + 1:]
            if source.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)
                written.append("/" + str(dest.relative_to(root)))
    else:
        if dst.endswith("/"):
            target = target / host_src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(host_src, target)
        written.append("/" + str(target.relative_to(root)))
    return written
