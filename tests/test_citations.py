"""Code and tests cite what a reader can open (a doc, a file, a test), never an issue number
of a tracker the repository does not carry (a number told a reader nothing)."""

from __future__ import annotations

import re

from tests.test_docs import CITING, CODE, REPO, prose

ISSUE = re.compile(r"\b[Ii]ssues? #?\d+")


def test_no_comment_or_docstring_cites_an_issue_number():
    found = [f"{p.relative_to(REPO)}: {m.group(0)}" for p in CODE + CITING for m in ISSUE.finditer(prose(p))
             if not p.name.endswith(".md")]
    assert not found, "cite the doc or test instead:\n  " + "\n  ".join(found)
