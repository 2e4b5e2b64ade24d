"""The cluster scripts (e2e, watch, load) driven by fake ``kubectl`` and ``pulumi`` on PATH
that answer the way a cluster does, so each wait can succeed and can time out.

The fakes answer from recorded output shapes: ``kubectl get deploy -o json`` of a
Deployment (Kubernetes omits ``.status.replicas`` when it is 0, so ``-o jsonpath`` prints
nothing), evaluated like kubectl's jsonpath (a missing field prints nothing); ``pulumi
stack output --json`` of a stack. Each Deployment answers from a sequence (one state per
call, the last one repeats). ``shellcheck`` over every script: tests/lint/test_shellcheck.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: `pulumi stack output --json --stack local` of a deployed local stack (names as exported).
STACK_OUTPUTS = {
    "target": "kind", "namespace": "platform", "workerMode": "deployment", "workerScaledKind": "ScaledObject",
    "workerScaledObjectName": "worker", "workerDeploymentName": "worker", "producerDeploymentName": "producer",
    "cacheApiDeploymentName": "cache-api", "cacheApiServiceName": "cache-api", "monitoringNamespace": "monitoring",
    "prometheusService": "monitoring-prometheus", "grafanaService": "monitoring-grafana",
    "kubeconfig": "[secret]",
}
KUBECONFIG = "apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: secret-token-Xy7}}]\n"


def deployment(name: str, replicas: int, ready: int | None = None) -> dict:
    """A Deployment as `kubectl get -o json` shows it: zero counts are omitted."""
    status: dict = {"observedGeneration": 3}
    if replicas:
        status.update(replicas=replicas, updatedReplicas=replicas)
    ready = replicas if ready is None else ready
    if ready:
        status.update(readyReplicas=ready, availableReplicas=ready)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "platform"},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": name}}}, "status": status}


FAKE_KUBECTL = r'''#!PYTHON
import json, os, sys
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "kubectl.log"), "a") as log:
    log.write(" ".join(args) + "\n")
if "get" in args and "deploy" in args:
    name = args[args.index("deploy") + 1]
    seq_file = os.path.join(state, f"deploy-{name}.json")
    seq = json.load(open(seq_file))
    obj = seq.pop(0) if len(seq) > 1 else seq[0]
    json.dump(seq, open(seq_file, "w"))
    out = args[args.index("-o") + 1]
    if out == "json":
        print(json.dumps(obj)); sys.exit(0)
    path = out.removeprefix("jsonpath=").strip("{}").lstrip(".").split(".")
    cur = obj
    for key in path:
        cur = cur.get(key) if isinstance(cur, dict) else None
    sys.stdout.write("" if cur is None else str(cur))  # kubectl prints nothing for a missing field
    sys.exit(0)
sys.exit(int(os.environ.get("FAKE_KUBECTL_RC", "0")))
'''

FAKE_PULUMI = r'''#!PYTHON
import json, os, sys
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "pulumi.log"), "a") as log:
    log.write(" ".join(args) + "\n")
outputs = json.load(open(os.path.join(state, "outputs.json")))
if args[:2] == ["stack", "output"]:
    if args[2] == "kubeconfig":
        sys.stdout.write(open(os.path.join(state, "kubeconfig")).read()); sys.exit(0)
    print(outputs[args[2]]); sys.exit(0)
if args[:2] == ["config", "get"]:
    config = json.load(open(os.path.join(state, "config.json")))
    if args[2] in config:
        print(config[args[2]]); sys.exit(0)
    sys.exit(1)
sys.exit(0)
'''


@pytest.fixture
def cluster(tmp_path):
    """PATH with fake kubectl/pulumi (+ docker, kind, make that succeed) and their state."""
    bindir, state, tmp, root = tmp_path / "bin", tmp_path / "state", tmp_path / "tmp", tmp_path / "repo"
    for d in (bindir, state, tmp, root):
        d.mkdir()
    # The scripts run from a copy of the checkout (they `cd` to their parent and write
    # stacks/Pulumi.e2e.yaml, the policy pack's venv...): copies of what they write to, links
    # to the rest, and a policy venv already there (making it is pip's work, not the script's).
    for entry in REPO.iterdir():
        if entry.name in ("scripts", "stacks"):
            shutil.copytree(entry, root / entry.name)
        elif entry.name != "policy" and not entry.name.startswith(".git"):
            (root / entry.name).symlink_to(entry)
    (root / "policy" / "venv" / "bin").mkdir(parents=True)
    (root / "policy" / "requirements.txt").symlink_to(REPO / "policy" / "requirements.txt")
    (root / "policy" / "venv" / "bin" / "python").write_text("#!/bin/sh\nexit 0\n")
    (root / "policy" / "venv" / "bin" / "python").chmod(0o755)
    for name, body in (("kubectl", FAKE_KUBECTL), ("pulumi", FAKE_PULUMI)):
        (bindir / name).write_text(body.replace("#!PYTHON", f"#!{sys.executable}", 1))
    for name in ("docker", "kind", "make"):
        (bindir / name).write_text("#!/bin/sh\nexit 0\n")
    for path in bindir.iterdir():
        path.chmod(0o755)
    (state / "outputs.json").write_text(json.dumps(STACK_OUTPUTS))
    (state / "config.json").write_text(json.dumps({"target": "kind", "kubeconfigContext": "kind-redis-keda"}))
    (state / "kubeconfig").write_text(KUBECONFIG)

    class Cluster:
        def deploy(self, name: str, *states: dict) -> None:
            (state / f"deploy-{name}.json").write_text(json.dumps(list(states)))

        def configure(self, **config: str) -> None:
            (state / "config.json").write_text(json.dumps(config))

        def run(self, script: str, timeout: int = 60, **env: str) -> subprocess.CompletedProcess:
            path = f"{bindir}:{os.environ['PATH']}"
            full_env = {"PATH": path, "HOME": str(tmp_path), "FAKE_STATE": str(state), "TMPDIR": str(tmp), **env}
            return subprocess.run(["bash", f"scripts/{script}"], cwd=root, env=full_env, capture_output=True,
                                  text=True, timeout=timeout)

        def kubectl_log(self) -> list[str]:
            log = state / "kubectl.log"
            return log.read_text().splitlines() if log.exists() else []

    c = Cluster()
    c.tmp = tmp
    return c


FAST = {"WAIT_INTERVAL": "1", "WAIT_ZERO": "3", "WAIT_UP": "3", "WAIT_DOWN": "3"}


def test_e2e_waits_for_zero_from_a_deployment_that_omits_replicas(cluster):
    """Scaled to zero, .status.replicas is absent: the first wait passes (it used to be
    `test "" -eq 0`, an error), then the scale-up wait times out naming itself."""
    cluster.deploy("worker", deployment("worker", 0))
    cluster.deploy("producer", deployment("producer", 1))
    out = cluster.run("e2e_kind.sh", **FAST)
    assert "ok: worker at 0 replicas" in out.stdout, out.stdout + out.stderr
    assert out.returncode != 0
    assert "timed out after 3s waiting for: KEDA scales the worker up from 0" in out.stderr
    assert "integer expression expected" not in out.stderr


def test_e2e_wait_asks_again_on_every_try(cluster):
    """3, 3, then 0 replicas: the zero wait passes on its third look (the count is not
    frozen at the first call); then KEDA scales up to 2 and the wait sees it."""
    cluster.deploy("worker", deployment("worker", 3), deployment("worker", 3), deployment("worker", 0),
                   deployment("worker", 0), deployment("worker", 2))
    cluster.deploy("producer", deployment("producer", 1))
    out = cluster.run("e2e_kind.sh", **{**FAST, "WAIT_ZERO": "20"})
    assert "ok: worker at 0 replicas" in out.stdout, out.stdout + out.stderr
    assert "ok: KEDA scales the worker up from 0" in out.stdout, out.stdout + out.stderr
    gets = [line for line in cluster.kubectl_log() if "{.status.replicas}" in line]
    assert len(gets) >= 5


def test_e2e_times_out_when_the_worker_never_reaches_zero(cluster):
    cluster.deploy("worker", deployment("worker", 3))
    out = cluster.run("e2e_kind.sh", **FAST)
    assert out.returncode != 0
    assert "timed out after 3s waiting for: worker at 0 replicas" in out.stderr, out.stdout + out.stderr


def test_watch_prints_zero_for_a_deployment_at_zero(cluster):
    cluster.deploy("worker", deployment("worker", 0))
    cluster.deploy("cache-api", deployment("cache-api", 2))
    out = cluster.run("watch.sh", DURATION="1", INTERVAL="1")
    assert out.returncode == 0, out.stderr
    rows = [line.split() for line in out.stdout.splitlines()[1:] if line.strip()]
    assert rows and all(row[1:] == ["0", "2"] for row in rows), out.stdout


def test_load_on_aks_leaves_no_kubeconfig_behind(cluster):
    """aks: the kubeconfig (a secret output) goes to a temp file for kubectl; after the
    burst (the producer pod path, which used to `exec` past the EXIT trap) it is gone."""
    cluster.configure(target="aks")
    cluster.deploy("producer", deployment("producer", 1))
    out = cluster.run("load.sh", STACK="aks", COUNT="5")
    assert out.returncode == 0, out.stdout + out.stderr
    used = [line.split("--kubeconfig ")[1].split()[0] for line in cluster.kubectl_log() if "--kubeconfig" in line]
    assert used and any("exec deploy/producer" in line for line in cluster.kubectl_log())
    assert not any(Path(p).exists() for p in used), used
    assert list(cluster.tmp.iterdir()) == []


def test_load_on_aks_removes_the_kubeconfig_when_the_burst_fails(cluster):
    cluster.configure(target="aks")
    cluster.deploy("producer", deployment("producer", 1))
    out = cluster.run("load.sh", STACK="aks", COUNT="5", FAKE_KUBECTL_RC="3")
    assert out.returncode == 3
    assert list(cluster.tmp.iterdir()) == []


def test_the_fake_kubectl_answers_like_kubectl(cluster):
    """The fake's jsonpath: a field that is present prints its value, an omitted one nothing."""
    cluster.deploy("w", deployment("w", 0), deployment("w", 4, ready=0))
    kubectl = shutil.which("kubectl", path=str(Path(cluster.tmp).parent / "bin"))
    env = {**os.environ, "FAKE_STATE": str(Path(cluster.tmp).parent / "state")}
    first = subprocess.run([kubectl, "get", "deploy", "w", "-o", "jsonpath={.status.replicas}"], env=env,
                           capture_output=True, text=True)
    second = subprocess.run([kubectl, "get", "deploy", "w", "-o", "jsonpath={.status.readyReplicas}"], env=env,
                            capture_output=True, text=True)
    assert (first.stdout, second.stdout) == ("", "")
    third = subprocess.run([kubectl, "get", "deploy", "w", "-o", "jsonpath={.status.replicas}"], env=env,
                           capture_output=True, text=True)
    assert third.stdout == "4"
