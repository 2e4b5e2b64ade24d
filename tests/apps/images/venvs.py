"""Virtualenvs standing in for an image's Python, cached by what they were built from.

An image's Python environment is python:3.11-slim's interpreter plus what its Dockerfile's
``pip install`` puts there. Here: a fresh stdlib ``venv`` on Python 3.11 (no system
site-packages), then that venv's own pip run with exactly the Dockerfile's arguments.

The cache key is the sha256 of the Python version, the platform, the pip arguments as the
Dockerfile writes them and the content of every file they name (the lock): same inputs,
same environment. Cache directory: ``$IMAGE_VENV_CACHE``, else
``$XDG_CACHE_HOME/redis-keda-platform/image-venvs``, else
``~/.cache/redis-keda-platform/image-venvs``; one subdirectory per key. A marker file is
written last, so an interrupted build is rebuilt. Each entry has a lock file: a build holds
it exclusively, a test process using the venv holds it shared until it exits (a complete
entry is taken under the shared lock alone, so parallel test processes never wait on each other). Each use
touches the marker; building a new entry removes the least recently used entries beyond
``KEEP``, never one that a running process holds.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

PYTHON = (3, 11)
MARKER = ".image-venv-complete"
KEEP = 8
#: Options of `pip install` whose value is a file the image build reads.
_FILE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}
#: Lock files of the entries this process uses, held shared until it exits.
_IN_USE: dict[Path, object] = {}


class VenvError(RuntimeError):
    """The environment could not be built; the message names what and why."""


def cache_root() -> Path:
    if os.environ.get("IMAGE_VENV_CACHE"):
        return Path(os.environ["IMAGE_VENV_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "redis-keda-platform" / "image-venvs"


def base_python() -> str:
    """A Python 3.11 interpreter to build venvs from (the one running the tests, if 3.11)."""
    candidates = [getattr(sys, "_base_executable", sys.executable), shutil.which("python3.11")]
    for exe in filter(None, candidates):
        out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2] == (3, 11))"],
                             capture_output=True, text=True)
        if out.stdout.strip() == "True":
            return exe
    raise VenvError("no Python 3.11 found (python:3.11-slim is what the images run): install python3.11")


def _python_version(exe: str) -> str:
    return subprocess.run([exe, "-c", "import sys; print(sys.version)"], capture_output=True, text=True,
                          check=True).stdout.strip()


def file_arguments(args: tuple[str, ...]) -> list[str]:
    """The image paths of the files ``pip install args`` reads (``-r FILE``, ``--requirement=FILE``)."""
    files = []
    for i, arg in enumerate(args):
        if arg in _FILE_OPTIONS:
            files.append(args[i + 1])
        elif "=" in arg and arg.split("=", 1)[0] in _FILE_OPTIONS:
            files.append(arg.split("=", 1)[1])
    return files


def host_arguments(args: tuple[str, ...], files: dict[str, Path]) -> list[str]:
    """``args`` with each file's image path replaced by where it is on this machine."""
    out = []
    for arg in args:
        if arg in files:
            out.append(str(files[arg]))
        elif "=" in arg and arg.split("=", 1)[1] in files:
            key, value = arg.split("=", 1)
            out.append(f"{key}={files[value]}")
        elif arg.startswith("/"):
            raise VenvError(f"pip argument {arg!r} is a path this harness does not know how to map")
        else:
            out.append(arg)
    return out


def venv_key(args: tuple[str, ...], files: dict[str, Path], python: str) -> str:
    material = {
        "python": _python_version(python),
        "platform": f"{sys.platform}-{platform.machine()}",
        "args": list(args),
        "files": {image_path: hashlib.sha256(host.read_bytes()).hexdigest() for image_path, host in sorted(files.items())},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]


def venv_python(path: Path) -> Path:
    return path / "bin" / "python"


def ensure_venv(args: tuple[str, ...], files: dict[str, Path], label: str) -> Path:
    """The venv for ``pip install args`` (``files``: image path -> host path of each file the
    args name), built now or taken from the cache."""
    python = base_python()
    key = venv_key(args, files, python)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    path = root / key
    lock = _IN_USE.get(path) or open(root / f"{key}.lock", "w")
    _IN_USE[path] = lock
    # Shared first: a complete entry is used without waiting, even while other processes
    # (pytest-xdist workers, other checkouts) hold it shared for their whole run.
    fcntl.flock(lock, fcntl.LOCK_SH)
    if _complete(path):
        (path / MARKER).touch()
        return path
    built = False
    # flock turns the shared lock into an exclusive one by dropping it first, so two
    # builders cannot deadlock; whoever gets it second finds the entry complete.
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        if _complete(path):
            (path / MARKER).touch()
        else:
            shutil.rmtree(path, ignore_errors=True)
            _build(path, python, host_arguments(args, files), label)
            (path / MARKER).write_text(json.dumps({"label": label, "args": list(args)}) + "\n")
            built = True
    finally:
        fcntl.flock(lock, fcntl.LOCK_SH)  # in use by this process from now on
    if built:
        _prune(root, keep=KEEP)
    return path


def _complete(path: Path) -> bool:
    return (path / MARKER).is_file() and venv_python(path).exists()


def _prune(root: Path, keep: int) -> None:
    """Remove the least recently used complete entries beyond ``keep`` (skipping any another
    process holds)."""
    entries = sorted((p for p in root.iterdir() if (p / MARKER).is_file()),
                     key=lambda p: (p / MARKER).stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        if old in _IN_USE:
            continue
        with open(root / f"{old.name}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another process builds or uses it
                continue
            shutil.rmtree(old, ignore_errors=True)


def _build(path: Path, python: str, pip_args: list[str], label: str) -> None:
    # Without ensurepip's own copy of pip (seconds per venv): the host's pip installs into the
    # venv through ``--python``, exactly as the venv's own pip would.
    proc = subprocess.run([python, "-m", "venv", "--without-pip", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise VenvError(f"{label}: python -m venv failed: {proc.stderr[-2000:]}")
    version = subprocess.run([str(venv_python(path)), "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
    if version != str(PYTHON):
        raise VenvError(f"{label}: the venv's Python is {version}, the image's is {PYTHON}")
    # The host's pip configuration (index, HTTP cache from `make setup`) decides where the
    # files come from; the hashes in the lock decide what they are.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    pip = [sys.executable, "-m", "pip", "--python", str(venv_python(path))]
    proc = subprocess.run([*pip, "install", *pip_args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        errors = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("WARNING"))
        raise VenvError(f"{label}: pip install {' '.join(pip_args)} failed:\n{errors[-3000:]}")
    # With --no-deps pip checks nothing: catch a lock that misses a declared dependency here.
    proc = subprocess.run([*pip, "check"], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        raise VenvError(f"{label}: pip check after installing {' '.join(pip_args)}:\n{proc.stdout[-3000:]}")
