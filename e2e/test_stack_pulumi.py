"""`pulumi up --stack local` of the platform's own Python program, on the sim.

The cycle the issue asks for: `pulumi up`, a no-op `preview --expect-no-changes`, a config
change (`workerMode=job`, `cacheApiReadPath=replica-sidecar`, `monitoring=false`) and back,
`pulumi destroy`, nothing left; and `pulumi preview --policy-pack policy`.

The Python program needs the Python language host, `pulumi-language-python`, which the Go
module proxy does not serve (toolchain/README.md, "Not served"). Until it is built, this
test proves that the engine stops on exactly that (not on anything of ours) and is skipped
with the reason; it never passes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e2e.conftest import REPO, pulumi

REFUSED = ("github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 is not served by the Go "
           "module proxy (every version: 403 Forbidden, 'This module version is not available'); "
           "see toolchain/README.md")
STACK = "local"


def _project(tmp_path: Path) -> Path:
    """The project as a user has it: program, components, stack files, and its virtualenv."""
    work = tmp_path / "project"
    work.mkdir()
    for name in ("Pulumi.yaml", "__main__.py", "components", "stacks", "charts", "policy"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    (work / ".venv").symlink_to(REPO / ".venv")
    return work


def test_local_stack_up_noop_update_destroy(tmp_path, pulumi_env, cluster):
    work = _project(tmp_path)
    if not (cluster.bin / "pulumi-language-python").exists():
        pulumi(pulumi_env, work, "stack", "init", STACK)
        out = pulumi(pulumi_env, work, "preview", "--stack", STACK, check=False)
        said = out.stdout + out.stderr
        assert out.returncode != 0
        assert "no language plugin 'pulumi-language-python'" in said, said[-3000:]
        pytest.skip(f"the engine cannot run the Python program: {REFUSED}")

    pulumi(pulumi_env, work, "stack", "init", STACK)
    pulumi(pulumi_env, work, "config", "set", "kubeconfigContext", "redis-keda-sim", "--stack", STACK)
    pulumi(pulumi_env, work, "up", "--yes", "--skip-preview", "--stack", STACK, timeout=1800)
    pulumi(pulumi_env, work, "preview", "--expect-no-changes", "--stack", STACK)
    pulumi(pulumi_env, work, "preview", "--policy-pack", "policy", "--stack", STACK)
    for key, value in (("workerMode", "job"), ("cacheApiReadPath", "replica-sidecar"), ("monitoring", "false")):
        pulumi(pulumi_env, work, "config", "set", key, value, "--stack", STACK)
    pulumi(pulumi_env, work, "up", "--yes", "--skip-preview", "--stack", STACK, timeout=1800)
    for key in ("workerMode", "cacheApiReadPath", "monitoring"):
        pulumi(pulumi_env, work, "config", "rm", key, "--stack", STACK)
    pulumi(pulumi_env, work, "up", "--yes", "--skip-preview", "--stack", STACK, timeout=1800)
    pulumi(pulumi_env, work, "destroy", "--yes", "--skip-preview", "--stack", STACK, timeout=1800)
    for ns in ("platform", "keda", "monitoring"):
        assert not cluster.exists("namespace", ns), f"namespace {ns} outlived pulumi destroy"
