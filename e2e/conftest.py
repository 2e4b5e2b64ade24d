"""The end-to-end tier: real tools on the local control plane (`make e2e`, docs/sim.md).

Everything here runs programs built by `make toolchain` against the sim that `make sim-up`
started. Nothing is mocked. A part that cannot run because a tool could not be had is
skipped with the reason, which pytest prints (`-rs`); it never passes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from e2e import sim

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cluster() -> sim.Sim:
    """The running sim; the tier fails (not skips) when it is not up."""
    cluster = sim.Sim.from_repo(REPO)
    problem = cluster.problem()
    if problem:
        pytest.fail(f"the local control plane is not up ({problem}); run 'make sim-up' first")
    return cluster


@pytest.fixture()
def pulumi_env(tmp_path: Path, cluster: sim.Sim) -> dict[str, str]:
    """A Pulumi CLI environment of its own: a file backend and a PULUMI_HOME in tmp_path,
    the toolchain first on PATH, no plugin downloads, the sim's kubeconfig."""
    home = tmp_path / "pulumi-home"
    state = tmp_path / "state"
    home.mkdir()
    state.mkdir()
    env = dict(os.environ)
    env.update({
        "PATH": f"{cluster.bin}:{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": "e2e-only-passphrase",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_SKIP_CONFIRMATIONS": "true",
        "KUBECONFIG": str(cluster.kubeconfig),
        "NO_COLOR": "1",
    })
    return env


def pulumi(env: dict[str, str], cwd: Path, *args: str, timeout: float = 600,
           check: bool = True) -> subprocess.CompletedProcess:
    """Run the toolchain's `pulumi` non-interactively; on failure the message has its output."""
    out = subprocess.run(["pulumi", *args, "--non-interactive"], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        pytest.fail(f"pulumi {' '.join(args)} failed ({out.returncode}):\n{out.stdout[-6000:]}\n{out.stderr[-4000:]}")
    return out


def stack_outputs(env: dict[str, str], cwd: Path, stack: str) -> dict:
    out = pulumi(env, cwd, "stack", "output", "--json", "--stack", stack)
    return json.loads(out.stdout)
