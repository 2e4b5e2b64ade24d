"""Tests of the lint gates copy the files they break into a temporary tree, never the checkout."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.lint.inventory import REPO


class Seeded:
    """A temporary tree holding copies of some repository files, to break one at a time."""

    def __init__(self, root: Path):
        self.root = root

    def copy(self, *names: str) -> Seeded:
        for name in names:
            (self.root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, self.root / name)
        return self

    def append(self, name: str, text: str) -> int:
        """Append ``text`` (one line) to the copy of ``name``; returns its line number."""
        path = self.root / name
        lines = path.read_text().splitlines()
        path.write_text("\n".join([*lines, text]) + "\n")
        return len(lines) + 1

    def sub(self, name: str, pattern: str, new: str) -> None:
        """Replace the first match of the regex ``pattern`` (which must match) in the copy of ``name``."""
        path = self.root / name
        text, n = re.subn(pattern, new, path.read_text(), count=1, flags=re.M)
        assert n == 1, f"{name} has no match for {pattern!r}: update the test's defect"
        path.write_text(text)

    def replace(self, name: str, old: str, new: str, count: int = 1) -> None:
        """Replace ``old`` (which must be there) by ``new`` in the copy of ``name``."""
        path = self.root / name
        text = path.read_text()
        assert old in text, f"{name} no longer holds {old!r}: update the test's defect"
        path.write_text(text.replace(old, new, count))


@pytest.fixture
def seeded(tmp_path) -> Seeded:
    root = tmp_path / "tree"
    root.mkdir()
    return Seeded(root)
