"""The Pulumi engine, the YAML language host and the kubernetes provider, for real, on the sim.

e2e/programs/engine-check goes through `pulumi up`, a no-op `preview --expect-no-changes`, an
update in place (replicas), a replacement the provider decides (an auto-named ConfigMap whose
data changes; a Deployment whose immutable selector changes) and `pulumi destroy`; after each
step the API server is asked what exists. It proves what the platform's own program needs from
the toolchain and the sim: readiness waits that finish (Deployment available, Service with
endpoints, PVC bound by kwok's volume stages), ordering, diffs and deletes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from e2e.conftest import pulumi, stack_outputs

PROGRAM = Path(__file__).parent / "programs" / "engine-check"
STACK = "sim"


def _copy(tmp_path: Path) -> Path:
    work = tmp_path / "engine-check"
    shutil.copytree(PROGRAM, work)
    return work


def test_up_noop_update_replace_destroy(tmp_path, pulumi_env, cluster):
    work = _copy(tmp_path)
    pulumi(pulumi_env, work, "stack", "init", STACK)

    up = pulumi(pulumi_env, work, "up", "--yes", "--skip-preview", "--stack", STACK)
    assert "created" in up.stdout
    deploy = cluster.get("deployment", "app", "-n", "engine-check")
    assert deploy["status"].get("availableReplicas") == 1, deploy["status"]
    pvc = cluster.get("pvc", "data", "-n", "engine-check")
    assert pvc["status"]["phase"] == "Bound"
    first = stack_outputs(pulumi_env, work, STACK)
    assert first["volume"] == pvc["spec"]["volumeName"]
    assert cluster.get("configmap", first["configMap"], "-n", "engine-check")["data"] == {"message": "hello"}
    endpoints = cluster.get("endpointslices", "-n", "engine-check", "-l", "kubernetes.io/service-name=web")
    assert [e for s in endpoints["items"] for e in s.get("endpoints") or []], "web has no endpoints"

    # A second run with nothing changed: the engine and provider agree with the server.
    pulumi(pulumi_env, work, "preview", "--expect-no-changes", "--stack", STACK)

    # In place: replicas.
    pulumi(pulumi_env, work, "config", "set", "replicas", "2", "--stack", STACK)
    pulumi(pulumi_env, work, "up", "--yes", "--skip-preview", "--stack", STACK)
    assert cluster.get("deployment", "app", "-n", "engine-check")["status"].get("availableReplicas") == 2

    # Replacements: new ConfigMap data (auto-named: a new one, then the old one deleted), and
    # an immutable selector (the provider deletes and recreates the Deployment).
    pulumi(pulumi_env, work, "config", "set", "message", "changed", "--stack", STACK)
    pulumi(pulumi_env, work, "config", "set", "selectorTier", "two", "--stack", STACK)
    preview = pulumi(pulumi_env, work, "preview", "--diff", "--stack", STACK)
    assert "+-" in preview.stdout or "replace" in preview.stdout, preview.stdout
    pulumi(pulumi_env, work, "up", "--yes", "--skip-preview", "--stack", STACK)
    second = stack_outputs(pulumi_env, work, STACK)
    assert second["configMap"] != first["configMap"]
    assert not cluster.exists("configmap", first["configMap"], "-n", "engine-check")
    deploy = cluster.get("deployment", "app", "-n", "engine-check")
    assert deploy["spec"]["selector"]["matchLabels"]["tier"] == "two"
    assert deploy["status"].get("availableReplicas") == 2
    pulumi(pulumi_env, work, "preview", "--expect-no-changes", "--stack", STACK)

    # Destroy: nothing the program made is left, the bound volume included.
    volume = second["volume"]
    pulumi(pulumi_env, work, "destroy", "--yes", "--skip-preview", "--stack", STACK)
    assert not cluster.exists("namespace", "engine-check")
    assert not cluster.exists("pv", volume), f"{volume} outlived its claim"
    pulumi(pulumi_env, work, "stack", "rm", "--yes", STACK)
