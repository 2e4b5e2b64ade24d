"""The Makefile, scripts and CI workflow a newcomer relies on, checked offline."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))


def _make(*args: str, path: str) -> subprocess.CompletedProcess:
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def _bare_path(tmp_path: Path, *tools: str) -> str:
    """A PATH with only bash, make, coreutils-ish basics and the named tools."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "sh", "make", "grep", "awk", "env", "cat", "dirname", "sed", "mktemp", *tools):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    return str(bindir)


def test_readme_documents_every_make_target():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z0-9-]+):.*## ", makefile, re.M)) - {"help"}
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| `make ([a-z0-9-]+)", readme, re.M))
    assert targets == documented, f"Makefile vs README: {sorted(targets ^ documented)}"


@pytest.mark.parametrize("target, tool", [
    ("up", "pulumi"), ("down", "pulumi"), ("load", "pulumi"), ("watch", "pulumi"),
    ("grafana", "pulumi"), ("report", "pulumi"),
    ("images", "docker"), ("smoke", "docker"), ("kind-up", "docker"),
])
def test_targets_fail_early_naming_the_missing_tool(tmp_path, target, tool):
    out = _make(target, path=_bare_path(tmp_path))
    assert out.returncode != 0
    assert f"'{tool}' is not on PATH" in out.stderr
    assert "install" in out.stderr  # says how to get it


def test_aks_needs_az_too(tmp_path):
    bindir = Path(_bare_path(tmp_path))
    fake = bindir / "pulumi"
    fake.write_text("#!/bin/sh\necho pulumi-called >&2\nexit 0\n")
    fake.chmod(0o755)
    out = _make("up", "STACK=aks", path=str(bindir))
    assert out.returncode != 0
    assert "'az' is not on PATH" in out.stderr
    assert "pulumi-called" not in out.stderr  # failed before touching the stack


def test_push_needs_a_registry(tmp_path):
    bindir = Path(_bare_path(tmp_path))
    fake = bindir / "docker"
    fake.write_text("#!/bin/sh\nexit 0\n")  # `docker info` succeeds
    fake.chmod(0o755)
    out = _make("push", path=str(bindir))
    assert out.returncode != 0 and "set REGISTRY=" in out.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0


def test_ci_workflow_mirrors_ci_run_and_has_image_and_e2e_jobs():
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    jobs = wf["jobs"]
    test_runs = [s.get("run", "") for s in jobs["test"]["steps"]]
    assert "bash .ci/run" in test_runs
    images = jobs["images"]
    image_runs = [s.get("run", "") for s in images["steps"]]
    assert images["needs"] == "test" and images["services"]["redis"]["image"].split("@sha256:")[0] == "redis:7.4.2"
    assert any("requirepass" in run for run in image_runs)  # the smoke's Redis has a password
    assert image_runs.index("make images") < image_runs.index("make smoke")
    e2e_runs = " ".join(s.get("run", "") for s in jobs["e2e-kind"]["steps"])
    assert "scripts/e2e_kind.sh" in e2e_runs and jobs["e2e-kind"]["needs"] == "images"
    ci_run = (REPO / ".ci" / "run").read_text()
    assert "make setup" in ci_run and "make test" in ci_run


def test_e2e_uses_outputs_the_stack_exports():
    """Every `out NAME` the scripts read is a stack output components/platform.py exports."""
    platform = (REPO / "components" / "platform.py").read_text()
    used = set()
    for script in SCRIPTS:
        used |= set(re.findall(r"\$\(out ([a-zA-Z]+)\)", script.read_text()))
    assert used, "scripts read no stack outputs?"
    missing = {name for name in used if f'"{name}"' not in platform}
    assert not missing, f"scripts read outputs the stack does not export: {missing}"


@pytest.mark.parametrize("cluster, existing, message", [
    ("redis-keda", "redis-keda", "is the dev cluster of make kind-up"),   # never the dev cluster
    ("", "redis-keda\nredis-keda-e2e", "already exists"),                  # default name, left over
])
def test_e2e_never_deletes_a_cluster_it_did_not_create(tmp_path, cluster, existing, message):
    """scripts/e2e_kind.sh deletes its kind cluster on exit: it must be its own (default
    redis-keda-e2e), never the user's dev cluster, and never one that existed before."""
    bindir = Path(_bare_path(tmp_path, "date", "printf"))
    calls = tmp_path / "calls.log"
    for tool in ("docker", "kubectl", "pulumi"):
        (bindir / tool).write_text(f"#!/bin/sh\necho {tool} \"$@\" >> {calls}\nexit 0\n")
        (bindir / tool).chmod(0o755)
    (bindir / "kind").write_text(f"#!/bin/sh\necho kind \"$@\" >> {calls}\n"
                                 f"[ \"$1 $2\" = \"get clusters\" ] && printf '{existing}\\n'\nexit 0\n")
    (bindir / "kind").chmod(0o755)
    env = {"PATH": str(bindir), "HOME": str(tmp_path)}
    if cluster:
        env["KIND_CLUSTER"] = cluster
    out = subprocess.run(["bash", "scripts/e2e_kind.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and message in out.stderr, out.stdout + out.stderr
    logged = calls.read_text() if calls.exists() else ""
    assert "delete" not in logged and "create" not in logged, logged


@pytest.mark.parametrize("target", ["test", "render", "lock", "bench"])
def test_python_targets_before_setup_say_to_run_setup(tmp_path, target):
    """Before `make setup` they died with a bare exit 127 (no .venv/bin/python)."""
    shutil.copy2(REPO / "Makefile", tmp_path / "Makefile")
    out = subprocess.run(["make", "--no-print-directory", target], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2, out
    assert "error: .venv/bin/python is missing: run 'make setup' first" in out.stderr


@pytest.mark.parametrize("python, message", [
    ("/root/.pyenv/versions/3.12.1/bin/python3", "is Python 3.12; this project needs 3.11: PYTHON=python3.11 make setup"),
    ("/nonexistent/python3", "no Python at '/nonexistent/python3': install Python 3.11"),
])
def test_setup_refuses_another_python_naming_the_fix(python, message):
    """README said setup checks Python 3.11; it did not (a venv on 3.12 failed later, in pip)."""
    if python.startswith("/root/.pyenv") and not Path(python).exists():
        pytest.skip(f"{python} is not on this machine")
    out = subprocess.run(["bash", "scripts/setup.sh"], cwd=REPO, env={**os.environ, "PYTHON": python},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and message in out.stderr, out.stderr
    assert not (REPO / ".venv" / "bin" / "python").resolve().as_posix().startswith(python)


@pytest.mark.slow
def test_setup_deploy_needs_only_python(tmp_path):
    """Someone who only deploys needs no test servers, scanners or helm (make setup stopped
    them on macOS or arm64 until they installed redis-server, prometheus and npm)."""
    for name in ("Makefile", "requirements.txt", "scripts/setup.sh"):
        (tmp_path / "repo" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tmp_path / "repo" / name)
    path = _bare_path(tmp_path)  # bash, make and basics: no redis-server, prometheus, npm, helm
    import sys

    python = str(Path(sys.base_prefix) / "bin" / "python3.11")  # the real interpreter, not a shim
    out = subprocess.run(["make", "--no-print-directory", "setup-deploy"], cwd=tmp_path / "repo",
                         env={"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "PYTHON": python},
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    venv_python = tmp_path / "repo" / ".venv" / "bin" / "python"
    check = subprocess.run([str(venv_python), "-c", "import pulumi, pulumi_kubernetes, pulumi_azure_native, pulumi_random"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert not (tmp_path / "repo" / ".venv-checkov").exists()
