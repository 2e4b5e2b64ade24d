"""ruff (pyflakes, bugbear, import order, pyupgrade: ruff.toml) on every Python file of the
tree, and mypy (mypy.ini) on the code that ships (components/, apps/, tools/, policy/): both
clean, and a seeded defect fails naming the file, line and rule."""

from __future__ import annotations

import re
import subprocess

from tests.lint import linters
from tests.lint.inventory import REPO

#: What mypy checks (mypy.ini says how).
MYPY_PATHS = ("components", "apps", "tools", "policy")


def ruff(*paths: str, cwd=REPO) -> list[str]:
    out = subprocess.run([str(linters.tool("ruff")), "check", "--no-cache", "--output-format", "concise",
                          "--config", str(REPO / "ruff.toml"), *paths], cwd=cwd, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise linters.LinterError(f"ruff exited {out.returncode}: {out.stderr.strip()}")
    return [line for line in out.stdout.splitlines() if re.match(r"\S+:\d+:\d+: [A-Z]+\d+ ", line)]


def mypy(*paths: str, cwd=REPO) -> list[str]:
    out = subprocess.run([str(linters.tool("mypy")), "--config-file", str(REPO / "mypy.ini"), "--no-incremental",
                          *paths], cwd=cwd, capture_output=True, text=True)
    if out.returncode not in (0, 1) or ("error" not in out.stdout and "Success" not in out.stdout):
        raise linters.LinterError(f"mypy exited {out.returncode}: {out.stdout.strip()} {out.stderr.strip()}")
    return [line for line in out.stdout.splitlines() if ": error:" in line]


def test_ruff_is_clean():
    found = ruff(".")
    assert not found, "ruff:\n  " + "\n  ".join(found)


def test_mypy_is_clean():
    found = mypy(*MYPY_PATHS)
    assert not found, "mypy:\n  " + "\n  ".join(found)


def test_a_seeded_loop_closure_fails_ruff(seeded):
    seeded.copy("apps/worker/users.py")
    line = seeded.append("apps/worker/users.py",
                         "CALLS = [lambda: i for i in range(3)]")
    found = ruff("apps/worker/users.py", cwd=seeded.root)
    assert [f for f in found if f.startswith(f"apps/worker/users.py:{line}:") and " B023 " in f], found


def test_a_seeded_type_error_fails_mypy(seeded):
    seeded.copy("components/connections.py")
    line = seeded.append("components/connections.py", "BROKEN: int = headroom('ten')")
    found = mypy("components/connections.py", cwd=seeded.root)
    assert any(f.startswith(f"components/connections.py:{line}:") and "[arg-type]" in f for f in found), found
