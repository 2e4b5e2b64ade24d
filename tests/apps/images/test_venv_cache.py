"""The image venv cache: keyed by what the venv is built from, reused, rebuilt when a build
did not finish, pruned to the most recently used."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.apps.images import venvs

ARGS = ("--require-hashes", "--no-deps", "-r", "/app/requirements.lock")


def test_reused_by_key_rebuilt_when_incomplete(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGE_VENV_CACHE", str(tmp_path / "cache"))
    lock = tmp_path / "requirements.lock"
    lock.write_text("# an empty lock: pip installs nothing\n")
    files = {"/app/requirements.lock": lock}
    first = venvs.ensure_venv(ARGS, files, "test")
    assert first.parent == tmp_path / "cache" and (first / venvs.MARKER).is_file()
    sentinel = first / "sentinel"
    sentinel.write_text("kept")
    assert venvs.ensure_venv(ARGS, files, "test") == first and sentinel.exists()  # cache hit
    lock.write_text("# another lock\n")
    assert venvs.venv_key(ARGS, files, venvs.base_python()) != first.name  # new content, new key
    lock.write_text("# an empty lock: pip installs nothing\n")
    (first / venvs.MARKER).unlink()  # a build that did not finish
    assert venvs.ensure_venv(ARGS, files, "test") == first
    assert not sentinel.exists() and (first / venvs.MARKER).is_file()  # rebuilt from scratch


def test_prune_keeps_the_most_recently_used_and_those_in_use(tmp_path):
    now = time.time()
    for i in range(6):
        entry = tmp_path / f"key{i}"
        entry.mkdir()
        (entry / venvs.MARKER).write_text("{}")
        os.utime(entry / venvs.MARKER, (now - i * 60, now - i * 60))
    (tmp_path / "building").mkdir()  # no marker yet: another run's build in progress
    in_use = subprocess.Popen(  # another test process using key4: holds its lock shared
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
         "fcntl.flock(f, fcntl.LOCK_SH); print('held', flush=True); time.sleep(60)", str(tmp_path / "key4.lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert in_use.stdout.readline().strip() == "held"
        venvs._prune(tmp_path, keep=2)
    finally:
        in_use.kill()
        in_use.wait()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["building", "key0", "key1", "key4"]


def test_a_complete_entry_is_taken_while_another_process_holds_it(tmp_path, monkeypatch):
    """Parallel test processes (pytest-xdist workers) each hold the venvs they use shared for
    their whole run: another process must still get the complete entry, not wait for them."""
    monkeypatch.setenv("IMAGE_VENV_CACHE", str(tmp_path / "cache"))
    lock = tmp_path / "requirements.lock"
    lock.write_text("# an empty lock: pip installs nothing\n")
    files = {"/app/requirements.lock": lock}
    entry = venvs.ensure_venv(ARGS, files, "test")
    venvs._IN_USE.pop(entry).close()  # forget it, as a fresh process would
    holder = subprocess.Popen(  # another worker using the entry: holds its lock shared
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
         "fcntl.flock(f, fcntl.LOCK_SH); print('held', flush=True); time.sleep(60)",
         str(entry.parent / f"{entry.name}.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        taken = subprocess.run(
            [sys.executable, "-c", "import sys; from tests.apps.images import venvs; "
             "from pathlib import Path; print(venvs.ensure_venv(tuple(sys.argv[2:]), "
             "{'/app/requirements.lock': Path(sys.argv[1])}, 'test'))", str(lock), *ARGS],
            capture_output=True, text=True, timeout=30, cwd=venvs.Path(__file__).resolve().parents[3],
            env={**os.environ, "IMAGE_VENV_CACHE": str(tmp_path / "cache")})
    finally:
        holder.kill()
        holder.wait()
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.strip() == str(entry)
