"""An image's environment without Docker: the files its COPY lines ship, in a directory that
stands in for the image's ``/``, and the Python its ``pip install`` builds.

Processes run the way the container runs them:
- cwd is the image's WORKDIR mapped into that directory, so ``python -m``, ``celery -A``
  and ``uvicorn`` find ``apps`` there exactly as they do under ``/app``;
- the environment is python:3.11-slim's (``LANG``, ``PATH`` with the venv's ``bin`` where
  the image has ``/usr/local/bin``), then the Dockerfile's ENV, then what the run adds
  (Redis endpoint, a Kubernetes container's env); nothing from the test process leaks in
  (no PYTHONPATH, no VIRTUAL_ENV), so only shipped files are importable: the checkout is
  not on ``sys.path`` and the cwd is outside it;
- an ENV value that is an absolute path into the image (``DATASET_DIR=/app/dataset``,
  ``HOME=/tmp``) is rewritten to the same path under the stand-in ``/``; ``/tmp`` is a
  fresh directory per process group, as each pod gets its own emptyDir there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.apps.images import context as ctx
from tests.apps.images import venvs
from tests.apps.images.dockerfile import AddUser, CompileAll, Copy, Dockerfile, DockerfileError, PipInstall, parse

BASE_IMAGE = "python:3.11-slim"
#: ``FROM`` may name BASE_IMAGE by tag alone or, as the Dockerfiles do, pinned to one build of
#: it by digest (docs/images.md); any other image, tag or digest form is refused.
_BASE_REF = re.compile(rf"^{re.escape(BASE_IMAGE)}(?:@sha256:[0-9a-f]{{64}})?$")
#: python:3.11-slim's own ENV that matters to a process (PATH is rebuilt around the venv).
BASE_ENV = {"LANG": "C.UTF-8"}
SYSTEM_PATH = "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
_IMPORT_ERROR = re.compile(r"^(?:\w+\.)*(ModuleNotFoundError|ImportError): .*$", re.M)


class ImageError(AssertionError):
    """Something an image would do wrong; the message names the image first."""


def _die_with_parent() -> None:
    """Linux: SIGKILL this child if the test process dies without its teardown."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Image:
    ref: str
    """The image reference (components/versions.py), used to name the image in failures."""
    dockerfile: Dockerfile
    root: Path
    """Stands in for the image's ``/``."""
    venv: Path
    shipped: list[str] = field(default_factory=list)
    """Image paths the COPY steps wrote."""
    runs: Path | None = None
    """Where each process group's /tmp is made (default: the system's temp dir)."""

    @property
    def name(self) -> str:
        return f"image {self.ref} ({self.dockerfile.path.name} at {self.dockerfile.path.parent})"

    def fail(self, what: str, output: str = "") -> ImageError:
        match = _IMPORT_ERROR.search(output)
        summary = f" [import error: {match.group(0)}]" if match else ""
        tail = f"\n--- output (last 3000 chars) ---\n{output[-3000:]}" if output else ""
        return ImageError(f"{self.name}: {what}{summary}{tail}")

    # -- paths and environment ---------------------------------------------------------------
    def host_path(self, image_path: str, tmp: Path | None = None) -> Path:
        """Where the image path ``image_path`` is on this machine (``tmp``: this run's /tmp)."""
        rel = image_path.lstrip("/")
        if tmp is not None and (rel == "tmp" or rel.startswith("tmp/")):
            return tmp / rel[4:]
        return self.root / rel

    def _map_value(self, value: str, tmp: Path | None) -> str:
        """An absolute path into the image -> the same path under the stand-in root. Only a
        single path is mapped (no ``:``-separated lists, no spaces)."""
        if value.startswith("/") and not value.startswith("//") and ":" not in value and " " not in value:
            return str(self.host_path(value, tmp))
        return value

    def env(self, extra: dict[str, str] | None = None, tmp: Path | None = None) -> dict[str, str]:
        env = dict(BASE_ENV)
        env["PATH"] = f"{self.venv / 'bin'}:{SYSTEM_PATH}"
        for source in (self.dockerfile.env, extra or {}):
            env.update({k: self._map_value(v, tmp) for k, v in source.items()})
        return env

    @property
    def workdir(self) -> Path:
        return self.host_path(self.dockerfile.workdir)

    def executable(self, word: str) -> str:
        """Resolve argv[0] on the image's PATH (the venv's bin first, then the system's)."""
        if "/" in word:
            raise self.fail(f"argv[0] {word!r}: absolute paths are not mapped by the harness")
        found = shutil.which(word, path=f"{self.venv / 'bin'}:{SYSTEM_PATH}")
        if found is None:
            raise self.fail(f"{word!r} is not installed in the image (not on its PATH)")
        return found

    # -- processes -----------------------------------------------------------------------------
    def start(self, argv: list[str] | tuple[str, ...], extra_env: dict[str, str] | None = None,
              tmp: Path | None = None, log: Path | None = None, cwd: str | None = None,
              context: str = "") -> Proc:
        """Start ``argv`` in the background; ``context`` (e.g. which container) prefixes failures."""
        tmp = tmp or new_tmp(self.runs)
        log = log or tmp.parent / f"{tmp.name}.log"
        out = open(log, "ab")
        proc = subprocess.Popen(
            [self.executable(argv[0]), *argv[1:]], cwd=self.host_path(cwd) if cwd else self.workdir,
            env=self.env(extra_env, tmp), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent)
        out.close()
        return Proc(self, list(argv), proc, log, tmp, f"{context}: " if context else "")

    def run(self, argv: list[str] | tuple[str, ...], extra_env: dict[str, str] | None = None,
            tmp: Path | None = None, timeout: float = 60, cwd: str | None = None) -> subprocess.CompletedProcess:
        """Run to completion; ``ImageError`` (with the output) if it does not finish in time."""
        tmp = tmp or new_tmp(self.runs)
        try:
            return subprocess.run(
                [self.executable(argv[0]), *argv[1:]], cwd=self.host_path(cwd) if cwd else self.workdir,
                env=self.env(extra_env, tmp), capture_output=True, text=True, timeout=timeout,
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
            raise self.fail(f"`{' '.join(argv)}` did not finish in {timeout}s", output) from None

    def check(self, argv: list[str] | tuple[str, ...], extra_env: dict[str, str] | None = None,
              tmp: Path | None = None, timeout: float = 60) -> str:
        """Run to completion and require exit 0; returns stdout + stderr."""
        out = self.run(argv, extra_env, tmp, timeout)
        output = out.stdout + out.stderr
        if out.returncode != 0:
            raise self.fail(f"`{' '.join(argv)}` exited {out.returncode}", output)
        return output


def new_tmp(under: Path | None = None) -> Path:
    """A fresh, empty directory for a process group's /tmp (a pod's emptyDir)."""
    if under is not None:
        under.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="run-", dir=under))
    tmp = base / "tmp"
    tmp.mkdir()
    return tmp


@dataclass
class Proc:
    image: Image
    argv: list[str]
    popen: subprocess.Popen
    log: Path
    tmp: Path
    context: str = ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def require_alive(self, what: str = "") -> None:
        if not self.alive():
            raise self.image.fail(f"{self.context}`{' '.join(self.argv)}` exited {self.popen.returncode}{what}",
                                  self.output())

    def stop(self, timeout: float = 20) -> int:
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        try:  # pool children of a process that exited by itself
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.popen.returncode

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 0.2):
        """Poll ``predicate`` until truthy while the process stays up; ``ImageError`` otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            self.require_alive(f" while waiting for {what}")
            if time.monotonic() > deadline:
                raise self.image.fail(f"{self.context}`{' '.join(self.argv)}`: no {what} after {timeout}s",
                                      self.output())
            time.sleep(interval)


# ---------------------------------------------------------------------------------------------
def build_image(ref: str, dockerfile_path: Path, context: Path, root: Path) -> Image:
    """Apply ``dockerfile_path``'s steps to ``root`` (the image's ``/``) and build its Python.

    Raises ``ImageError`` naming the image for anything Docker would also fail on or that
    the image tests require (base image, Python 3.11, one pip install).
    """
    label = f"image {ref} ({dockerfile_path})"
    try:
        spec = parse(dockerfile_path, context)
    except DockerfileError as exc:
        raise ImageError(f"{label}: {exc}") from None
    if not _BASE_REF.match(spec.base):
        raise ImageError(f"{label}: base image is {spec.base}, the image tests (and locks) target {BASE_IMAGE}"
                         f" (optionally pinned: {BASE_IMAGE}@sha256:<64 hex digits>)")
    if spec.user is None or spec.user.split(":")[0] in ("0", "root"):
        raise ImageError(f"{label}: runs as root (USER {spec.user}); the pods require a non-root user")
    if len(spec.pip_installs) != 1:
        raise ImageError(f"{label}: expected exactly one `RUN pip install`, found {len(spec.pip_installs)}")
    sent = ctx.sent_paths(context, spec.ignore_file)
    root.mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    image = Image(ref, spec, root, Path("/nonexistent-venv"), runs=root.parent / f"{root.name}-runs")
    for step in spec.steps:
        if isinstance(step, Copy):
            try:
                image.shipped += ctx.copy_into(root, context, sent, step.src, step.dst)
            except ctx.ContextError as exc:
                raise ImageError(f"{label}: {exc}") from None
        elif isinstance(step, PipInstall):
            files = {}
            for path in venvs.file_arguments(step.args):
                host = image.host_path(path)
                if not host.is_file():
                    raise ImageError(f"{label}: `pip install` reads {path}, which no COPY before it put in the image")
                files[path] = host
            try:
                image.venv = venvs.ensure_venv(step.args, files, label)
            except venvs.VenvError as exc:
                raise ImageError(str(exc)) from None
        elif isinstance(step, CompileAll):
            if not venvs.venv_python(image.venv).exists():
                raise ImageError(f"{label}: python -m compileall before pip install")
            args = [str(image.host_path(a)) if a.startswith("/") else a for a in step.args]
            out = subprocess.run([str(venvs.venv_python(image.venv)), "-m", "compileall", *args],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                raise ImageError(f"{label}: python -m compileall {' '.join(step.args)} failed:\n{out.stdout[-2000:]}")
        elif isinstance(step, AddUser):
            continue
    return image
