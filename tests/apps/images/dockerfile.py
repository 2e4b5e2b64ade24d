"""What a Dockerfile builds, read without Docker: base, ENV, WORKDIR, COPY, RUN, USER, CMD.

dockerfile-parse splits the file into instructions (comments, line continuations, parser
directives); this module gives each instruction the meaning Docker gives it, for the subset
our images use, and raises ``DockerfileError`` on anything else (an unknown instruction, a
flag, a wildcard, a shell construct, variable substitution): a test that silently skipped
an instruction would prove an image that is not the one Docker builds.
"""

from __future__ import annotations

import io
import json
import posixpath
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import get_key_val_dictionary

#: pip settings an ENV may hold: they change how pip runs at build time, never what a
#: hash-checked install puts in the image (the tests install with the host's pip cache).
PIP_ENV_UNDERSTOOD = {"PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_ROOT_USER_ACTION"}
_SHELL_OPERATORS = {";", "|", "||", "&", ">", ">>", "<", "2>", "2>&1"}


class DockerfileError(ValueError):
    """The Dockerfile holds something this reader does not understand; names file and line."""


@dataclass(frozen=True)
class Copy:
    """``COPY src dst``: ``src`` relative to the build context, ``dst`` absolute in the image."""

    src: str
    dst: str


@dataclass(frozen=True)
class PipInstall:
    """``RUN pip install ARGS``: the arguments exactly as written (paths are image paths)."""

    args: tuple[str, ...]


@dataclass(frozen=True)
class CompileAll:
    """``RUN python -m compileall ARGS``: bytecode compiled at build time."""

    args: tuple[str, ...]


@dataclass(frozen=True)
class AddUser:
    """``RUN groupadd/useradd ...``: creates the image's user (not reproduced by the tests,
    which run as whoever runs them; ``USER`` is checked instead)."""

    argv: tuple[str, ...]


Step = Copy | PipInstall | CompileAll | AddUser


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    base: str
    env: dict[str, str]
    """Every ENV, in order (later ones override earlier ones)."""
    workdir: str
    steps: tuple[Step, ...]
    """COPY and RUN steps, in order."""
    user: str | None
    expose: tuple[int, ...]
    cmd: tuple[str, ...]
    ignore_file: Path | None = field(default=None)
    """The .dockerignore BuildKit applies to this build (see ``ignore_file_for``)."""

    @property
    def copies(self) -> list[Copy]:
        return [s for s in self.steps if isinstance(s, Copy)]

    @property
    def pip_installs(self) -> list[PipInstall]:
        return [s for s in self.steps if isinstance(s, PipInstall)]


def ignore_file_for(dockerfile: Path, context: Path) -> Path | None:
    """BuildKit uses ``<Dockerfile>.dockerignore`` beside the Dockerfile when it exists, else
    the context's ``.dockerignore``."""
    own = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if own.is_file():
        return own
    root = context / ".dockerignore"
    return root if root.is_file() else None


def parse(path: Path, context: Path) -> Dockerfile:
    """Read ``path`` (built with ``context`` as its build context)."""
    parser = DockerfileParser(fileobj=io.BytesIO(path.read_bytes()), env_replace=False)
    base: str | None = None
    env: dict[str, str] = {}
    workdir = "/"
    steps: list[Step] = []
    user: str | None = None
    expose: list[int] = []
    cmd: tuple[str, ...] | None = None

    for insn in parser.structure:
        op, value, line = insn["instruction"], insn["value"].strip(), insn["startline"] + 1

        def fail(why: str, line=line, op=op, value=value) -> DockerfileError:
            return DockerfileError(f"{path}:{line}: {op} {value!r}: {why}")

        if op == "COMMENT":
            continue
        if op != "FROM" and base is None:
            raise fail("instruction before FROM")
        if "$" in value and op != "RUN":
            raise fail("variable substitution is not understood")
        if op == "FROM":
            if base is not None:
                raise fail("multi-stage builds are not understood")
            words = value.split()
            if len(words) != 1 or words[0].startswith("--"):
                raise fail("expected `FROM image:tag` (no flags, no AS)")
            base = words[0]
        elif op == "ENV":
            try:
                pairs = get_key_val_dictionary(value)
            except (ValueError, IndexError) as exc:
                raise fail(f"cannot read: {exc}") from None
            for key in pairs:
                if key in ("PATH", "PYTHONPATH", "PYTHONHOME"):
                    raise fail(f"ENV {key} is not understood (the tests put the venv where the image has "
                               f"/usr/local/bin, and nothing else on sys.path)")
                if key.startswith("PIP_") and key not in PIP_ENV_UNDERSTOOD:
                    raise fail(f"{key} may change what pip installs; only {sorted(PIP_ENV_UNDERSTOOD)} are understood")
            env.update(pairs)
        elif op == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, value))
        elif op == "COPY":
            words = json.loads(value) if value.startswith("[") else shlex.split(value)
            if any(w.startswith("--") for w in words):
                raise fail("COPY flags (--chown, --from, ...) are not understood")
            if len(words) != 2:
                raise fail("expected exactly `COPY src dst`")
            src, dst = words
            if any(ch in src for ch in "*?[") or src.startswith("/") or posixpath.normpath(src).startswith(".."):
                raise fail("wildcards and paths outside the context are not understood")
            absolute = posixpath.join(workdir, dst)
            steps.append(Copy(posixpath.normpath(src), posixpath.normpath(absolute) + ("/" if dst.endswith("/") else "")))
        elif op == "RUN":
            steps += _run_steps(value, fail)
        elif op == "USER":
            user = value
        elif op == "EXPOSE":
            try:
                expose += [int(word.split("/")[0]) for word in value.split()]
            except ValueError:
                raise fail("expected port numbers") from None
        elif op == "CMD":
            if not value.startswith("["):
                raise fail("only the exec (JSON) form is understood")
            cmd = tuple(json.loads(value))
        else:
            raise fail("instruction not understood by the image tests (tests/apps/images/dockerfile.py)")

    if base is None:
        raise DockerfileError(f"{path}: no FROM")
    if cmd is None:
        raise DockerfileError(f"{path}: no CMD")
    return Dockerfile(path, base, env, workdir, tuple(steps), user, tuple(expose), cmd,
                      ignore_file_for(path, context))


def _run_steps(value: str, fail) -> list[Step]:
    if "$" in value or "`" in value:
        raise fail("variable or command substitution is not understood")
    lexer = shlex.shlex(value, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    if any(w in _SHELL_OPERATORS or (set(w) <= set("();<>|&") and w != "&&") for w in words):
        raise fail("only commands joined by && are understood")
    commands: list[list[str]] = [[]]
    for word in words:
        if word == "&&":
            commands.append([])
        else:
            commands[-1].append(word)
    steps: list[Step] = []
    for argv in commands:
        if not argv:
            raise fail("empty command")
        if argv[:2] in (["pip", "install"], ["pip3", "install"]):
            steps.append(PipInstall(tuple(argv[2:])))
        elif argv[:4] == ["python", "-m", "pip", "install"]:
            steps.append(PipInstall(tuple(argv[4:])))
        elif argv[:3] == ["python", "-m", "compileall"]:
            steps.append(CompileAll(tuple(argv[3:])))
        elif argv[0] in ("groupadd", "useradd"):
            steps.append(AddUser(tuple(argv)))
        else:
            raise fail(f"command {argv[0]!r} not understood (pip install, python -m compileall, groupadd, useradd)")
    return steps
