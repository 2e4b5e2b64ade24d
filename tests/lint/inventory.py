"""What the lint gates lint, found in the tree rather than listed by hand.

A file is in the repository when git knows it, tracked or not yet added (``git ls-files
--cached --others --exclude-standard``): a script written a minute ago is linted before it is
committed, and nothing .gitignore'd (the venvs, ``out/``) is. Outside a git checkout the tree
is walked instead, skipping the same kinds of directories.

- shell scripts: every ``*.sh`` (sourced ones too; they carry a ``# shellcheck shell=``
  directive instead of a shebang) and every file whose shebang runs sh, bash, dash or ksh,
  whatever its name (``.ci/run``);
- the workflows' ``run:`` steps, which the runner executes with bash (each is a script too);
- Dockerfiles: ``Dockerfile``, ``Dockerfile.<x>`` and ``<x>.Dockerfile``, never a
  ``Dockerfile.dockerignore``;
- workflows: ``.github/workflows/*.yml`` and ``*.yaml``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
#: The shells shellcheck understands (``--shell``); a shebang naming another one is not ours to lint.
SHELLS = {"sh", "bash", "dash", "ksh"}
_SKIP_DIRS = {".git", "__pycache__", ".pytest_cache", "node_modules", "out", "build"}
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)


def repo_files(root: Path = REPO) -> list[str]:
    """Every file of the repository at ``root``, as POSIX paths relative to it, sorted."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, check=True, timeout=60).stdout
        names = {name for name in out.decode().split("\0") if name}
    except (OSError, subprocess.CalledProcessError):
        names = set()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".venv")]
            names |= {(Path(dirpath) / f).relative_to(root).as_posix() for f in filenames}
    return sorted(name for name in names if (root / name).is_file())


def shebang_shell(path: Path) -> str | None:
    """The shell a file's ``#!`` line runs (``/bin/sh``, ``/usr/bin/env bash``, ``env -S bash -e``),
    or None when it has no shebang or runs something else."""
    with path.open("rb") as handle:
        first = handle.readline(256)
    if not first.startswith(b"#!") or b"\0" in first:
        return None
    try:
        words = shlex.split(first[2:].decode("utf-8", "replace"))
    except ValueError:
        return None
    if words and Path(words[0]).name == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    name = Path(words[0]).name if words else ""
    return name if name in SHELLS else None


def shell_scripts(root: Path = REPO) -> list[str]:
    return [name for name in repo_files(root) if name.endswith(".sh") or shebang_shell(root / name)]


def dockerfiles(root: Path = REPO) -> list[str]:
    def is_dockerfile(name: str) -> bool:
        base = name.rsplit("/", 1)[-1]
        if base.endswith(".dockerignore"):
            return False
        return base == "Dockerfile" or base.startswith("Dockerfile.") or base.endswith(".Dockerfile")

    return [name for name in repo_files(root) if is_dockerfile(name)]


def workflows(root: Path = REPO) -> list[str]:
    return [name for name in repo_files(root)
            if re.fullmatch(r"\.github/workflows/[^/]+\.ya?ml", name)]


@dataclass(frozen=True)
class RunStep:
    """One ``run:`` step of a workflow, as the runner executes it."""

    workflow: str
    job: str
    index: int
    name: str
    script: str
    shell: str

    @property
    def label(self) -> str:
        return f"{self.workflow}: job {self.job}, step {self.index} ({self.name})"

    def as_script(self) -> str:
        """The step as a file shellcheck can read: the shell's shebang, then the script with each
        ``${{ expression }}`` (substituted before the shell sees it) as a plain word."""
        return f"#!/usr/bin/env {self.shell}\n" + _EXPRESSION.sub("GITHUB_EXPRESSION", self.script)


def run_steps(root: Path = REPO) -> list[RunStep]:
    """Every ``run:`` step of every workflow whose shell shellcheck understands (the default on
    Linux runners is bash)."""
    steps = []
    for name in workflows(root):
        doc = yaml.safe_load((root / name).read_text()) or {}
        defaults = (doc.get("defaults") or {}).get("run") or {}
        for job_id, job in (doc.get("jobs") or {}).items():
            job_shell = ((job.get("defaults") or {}).get("run") or {}).get("shell") or defaults.get("shell") or "bash"
            for index, step in enumerate(job.get("steps") or []):
                if "run" not in step:
                    continue
                shell = str(step.get("shell") or job_shell).split()[0]
                if Path(shell).name in SHELLS:
                    steps.append(RunStep(name, job_id, index, step.get("name") or step["run"].splitlines()[0],
                                         step["run"], Path(shell).name))
    return steps
