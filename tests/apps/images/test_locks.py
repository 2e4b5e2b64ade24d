"""Image locks: fresh against their requirements files (checked offline), hashed, what the
Dockerfiles install, and a stale or tampered lock is caught."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.apps.images.catalog import REPO, dockerfiles_by_image
from tests.apps.images.dockerfile import PipInstall, parse
from tools import lock

APP_DIRS = [p.parent for p in sorted(dockerfiles_by_image().values())]


def test_every_image_has_a_lock():
    assert lock.lock_dirs(REPO) == sorted(APP_DIRS)


@pytest.mark.parametrize("app_dir", APP_DIRS, ids=lambda p: p.name)
def test_lock_is_fresh(app_dir):
    assert lock.problems(app_dir) == []


def test_check_command_passes_offline():
    out = subprocess.run([sys.executable, "tools/lock.py", "--check"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("app_dir", APP_DIRS, ids=lambda p: p.name)
def test_dockerfile_installs_exactly_the_lock(app_dir):
    spec = parse(app_dir / "Dockerfile", REPO)
    image_lock = f"/app/apps/{app_dir.name}/requirements.lock"
    assert spec.pip_installs == [PipInstall(("--require-hashes", "--no-deps", "--only-binary=:all:", "-r", image_lock))]
    assert any(c.src == f"apps/{app_dir.name}/requirements.lock" and c.dst == image_lock for c in spec.copies)


@pytest.mark.parametrize("app_dir", APP_DIRS, ids=lambda p: p.name)
def test_celery_and_kombu_come_with_their_redis_extra(app_dir):
    """The extras Celery and kombu document for a Redis broker (kombu's Redis transport imports
    `packaging`, declared only in kombu[redis])."""
    for req in lock.direct_requirements(app_dir / "requirements.txt"):
        if req.name in ("celery", "kombu"):
            assert "redis" in req.extras, f"{app_dir.name}: {req}"
    if any(r.name == "kombu" for r in lock.direct_requirements(app_dir / "requirements.txt")):
        locked = {e.requirement.name for e in lock.parse_lock((app_dir / "requirements.lock").read_text()).entries}
        assert "packaging" in locked


# -- a stale or tampered lock is caught ---------------------------------------------------------
@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """requirements-dev.txt and the worker's requirements + lock, in a scratch repository root."""
    shutil.copy2(REPO / "requirements-dev.txt", tmp_path / "requirements-dev.txt")
    app = tmp_path / "apps" / "worker"
    app.mkdir(parents=True)
    for name in ("requirements.txt", "requirements.lock", "Dockerfile"):
        shutil.copy2(REPO / "apps" / "worker" / name, app / name)
    assert lock.problems(app, tmp_path) == []
    return tmp_path


def test_edited_requirements_make_the_lock_stale(repo_copy):
    app = repo_copy / "apps" / "worker"
    req = app / "requirements.txt"
    text, n = re.subn(r"^redis==\S+$", "redis==8.0.0", req.read_text(), flags=re.M)
    assert n == 1, "the worker's requirements pin redis no more: update the test's edit"
    req.write_text(text)
    found = lock.problems(app, repo_copy)
    assert any("is stale: apps/worker/requirements.txt changed" in p for p in found), found
    assert any("redis==8.0.0 from the requirements file is not in the lock" in p for p in found), found


def test_dropped_extra_makes_the_lock_stale(repo_copy):
    app = repo_copy / "apps" / "worker"
    req = app / "requirements.txt"
    req.write_text(req.read_text().replace("kombu[redis]==", "kombu=="))
    found = lock.problems(app, repo_copy)
    assert any("is stale" in p for p in found) and any("kombu==5.7.0 from the requirements file" in p for p in found)


def test_hand_edited_lock_is_caught(repo_copy):
    app = repo_copy / "apps" / "worker"
    lock_file = app / "requirements.lock"
    text = lock_file.read_text()
    # a pin changed by hand, and an entry's hashes removed
    text = text.replace("prometheus-client==0.26.0", "prometheus-client==0.25.0")
    start = text.index("vine==")
    end = text.index("\n", text.index("# via", start))
    text = text[:start] + "vine==5.1.0\n" + "    # via kombu" + text[end:]
    lock_file.write_text(text)
    found = lock.problems(app, repo_copy)
    assert any("top-level prometheus-client==0.25.0 is not in the requirements file" in p for p in found), found
    assert any("vine==5.1.0 has no hash" in p for p in found), found


def test_lock_from_another_uv_or_command_is_caught(repo_copy):
    app = repo_copy / "apps" / "worker"
    dev = repo_copy / "requirements-dev.txt"
    dev.write_text(dev.read_text().replace(f"uv=={lock.pinned_uv_version(REPO)}", "uv==0.0.1"))
    found = lock.problems(app, repo_copy)
    assert any("requirements-dev.txt pins uv 0.0.1" in p for p in found), found
    lock_file = app / "requirements.lock"
    lock_file.write_text(lock_file.read_text().replace("--python-platform linux", "--python-platform macos"))
    assert any("another command" in p for p in lock.problems(app, repo_copy))


def test_lock_parser_reads_hashes_and_annotations():
    parsed = lock.parse_lock((REPO / "apps" / "worker" / "requirements.lock").read_text())
    by_name = {e.requirement.name: e for e in parsed.entries}
    assert by_name["kombu"].requirement == Requirement("kombu[redis]==5.7.0")
    assert "-r apps/worker/requirements.txt" in by_name["kombu"].via and "celery" in by_name["kombu"].via
    assert by_name["packaging"].via == ("kombu",)
    assert all(h.startswith("sha256:") for e in parsed.entries for h in e.hashes)
    assert set(parsed.header) == {"sha256", "uv", "command"}
