"""tools/render.py as a CLI and as a library: exit codes, files, determinism."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError
from tests.infra.validation.render import shared_helm_templates
from tools.render import main, render_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _helm_templates_once():
    """The in-process renders here share each distinct ``helm template`` with the run (the
    Helm step itself is tested in test_helm_render.py); the subprocess one runs it for real."""
    with shared_helm_templates():
        yield
FILE_RE = re.compile(r"^\d{3}-[a-z]+-[a-z0-9-]+-[a-z0-9-]+\.yaml$")


def test_cli_writes_one_file_per_object(tmp_path, capsys):
    rc = main(["--stack", "local", "--out", str(tmp_path), "--set", "workerMode=job"])
    assert rc == 0
    files = sorted((tmp_path / "k8s").glob("*.yaml"))
    assert files and all(FILE_RE.match(f.name) for f in files)
    objs = [yaml.safe_load(f.read_text()) for f in files]
    assert all({"apiVersion", "kind", "metadata"} <= set(o) for o in objs)
    for f, o in zip(files, objs, strict=True):
        ns = o["metadata"].get("namespace") or "cluster"
        assert f.name.endswith(f"-{o['kind'].lower()}-{ns}-{o['metadata']['name']}.yaml")
    assert [o["kind"] for o in objs].count("ScaledJob") == 1
    assert json.loads((tmp_path / "azure-resources.json").read_text()) == []
    other = json.loads((tmp_path / "other-resources.json").read_text())
    assert {o["type"] for o in other} >= {"kubernetes:helm.sh/v3:Release", "random:index/randomPassword:RandomPassword"}
    outputs = json.loads((tmp_path / "outputs.json").read_text())
    assert outputs["kubeconfig"] == "[secret]" and outputs["workerMode"] == "job"
    assert f"{len(files)} Kubernetes objects" in capsys.readouterr().out


def test_cli_aks_writes_azure_resources(tmp_path):
    assert main(["--stack", "aks", "--out", str(tmp_path)]) == 0
    azure = json.loads((tmp_path / "azure-resources.json").read_text())
    assert {"type", "name", "properties"} <= set(azure[0])
    assert any(a["type"] == "azure-native:redisenterprise:RedisEnterprise" for a in azure)
    assert not any(a["type"] == "azure-native:redis:Redis" for a in azure)
    assert main(["--stack", "aks", "--out", str(tmp_path / "classic"), "--set", "azureRedis=classic",
                 "--set", "deployerPrincipalType=ServicePrincipal"]) == 0
    classic = json.loads((tmp_path / "classic" / "azure-resources.json").read_text())
    assert any(a["type"] == "azure-native:redis:Redis" for a in classic)
    assert not any(a["type"].startswith("azure-native:redisenterprise:") for a in classic)
    (deployer,) = [a for a in classic if a["name"] == "aks-deployer-admin"]
    assert deployer["properties"]["principalType"] == "ServicePrincipal"


def test_cli_rerun_removes_stale_files(tmp_path):
    assert main(["--stack", "local", "--out", str(tmp_path)]) == 0
    assert any("scaledobject" in f.name for f in (tmp_path / "k8s").iterdir())
    assert main(["--stack", "local", "--out", str(tmp_path), "--set", "workerMode=job"]) == 0
    assert not any("scaledobject" in f.name for f in (tmp_path / "k8s").iterdir())


@pytest.mark.parametrize("argv, fragment", [
    (["--set", "workerMaxReplicas=0"], "redis-keda-platform:workerMaxReplicas"),
    (["--set", "nope=1"], "redis-keda-platform:nope: unknown config key"),
    (["--set", "target=aks", "--set", "cacheApiReadPath=replica-sidecar"], "redis-keda-platform:cacheApiReadPath"),
    (["--set", "novalue"], "--set expects key=value"),
])
def test_cli_bad_config_exit_2_one_line(tmp_path, capsys, argv, fragment):
    rc = main(["--stack", "local", "--out", str(tmp_path)] + argv)
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err
    assert not (tmp_path / "k8s").exists()


def test_unknown_stack_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown stack 'prod'"):
        render_stack("prod")


@pytest.mark.slow
def test_script_and_module_entry_points(tmp_path):
    ok = subprocess.run([sys.executable, "tools/render.py", "--stack", "aks", "--out", str(tmp_path / "a"),
                         "--set", "workerMode=job"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "a" / "k8s").is_dir() and "Traceback" not in ok.stderr
    bad = subprocess.run([sys.executable, "-m", "tools.render", "--stack", "aks", "--out", str(tmp_path / "b"),
                          "--set", "cacheApiReadPath=replica-sidecar"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert "redis-keda-platform:cacheApiReadPath" in bad.stderr and "Traceback" not in bad.stderr


def test_repeated_renders_are_identical_and_independent():
    a = render_stack("local")
    b = render_stack("aks")
    c = render_stack("local")
    assert a.k8s_objects == c.k8s_objects and a.outputs == c.outputs
    assert len(a.resources) == len(c.resources)
    assert b.azure_resources and not c.azure_resources


def test_a_render_over_an_earlier_one_leaves_nothing_stale(tmp_path):
    """Monitoring on, then off, into the same folder: the monitoring release's files and the
    objects only the first render had are gone."""
    assert main(["--stack", "local", "--out", str(tmp_path), "--set", "monitoring=true"]) == 0
    assert (tmp_path / "helm" / "monitoring" / "release.yaml").is_file()
    first = {p.name for p in (tmp_path / "k8s").glob("*.yaml")}
    assert main(["--stack", "local", "--out", str(tmp_path), "--set", "monitoring=false"]) == 0
    assert not (tmp_path / "helm" / "monitoring").exists()
    assert (tmp_path / "helm" / "keda" / "release.yaml").is_file()
    second = {p.name for p in (tmp_path / "k8s").glob("*.yaml")}
    assert second and second < first | second and not any("redis-exporter" in n for n in second)
