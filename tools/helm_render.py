"""The stack's Helm releases, rendered by a real ``helm template`` of the vendored charts.

The program registers each chart as a ``helm.v3.Release`` (components/keda.py,
components/monitoring.py). Under Pulumi mocks (tools/render.py) that Release is recorded
with exactly the inputs the provider would get; this module takes the release name,
namespace, chart, version and values from there (never from a copy) and runs

    helm template <name> charts/<chart> --namespace <ns> --values <values> \\
        --kube-version <the stack's Kubernetes minor> --include-crds

with the pinned helm (tools/helm_install.py) on the chart vendored as released
(charts/, whose version must be the Release's). ``--include-crds``: the Release installs
the charts' ``crds/`` too. Helm hooks (the admission-webhook Jobs) are kept: the Release
runs them. No ``--api-versions``: none of the two charts' templates branches on a
monitoring or KEDA API (only on the Kubernetes version and built-in APIs).

What Helm does at install time and ``helm template`` does not, done here: a namespaced
object without ``metadata.namespace`` is created in the release namespace, so it gets it.

Writes, beside the program's own objects (``OUT/k8s/``):
  OUT/helm/<release>/release.yaml                 name, namespace, chart, version, kubeVersion, values
  OUT/helm/<release>/<NNN>-<kind>-<ns>-<name>.yaml one object per file, in Helm's order
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.helm_install import find_helm
from tools.redaction import redacted_inputs

ROOT = Path(__file__).resolve().parent.parent
CHARTS_DIR = ROOT / "charts"
KIND_CONFIG = ROOT / "deploy" / "kind" / "cluster.yaml"
RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
HELM_TIMEOUT_SECONDS = 120
_NODE_IMAGE = re.compile(r"^kindest/node:v(?P<minor>\d+\.\d+)\.\d+(@sha256:[0-9a-f]{64})?$")
#: Kinds Helm creates without a namespace (everything else lands in the release namespace).
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "ClusterTriggerAuthentication", "ClusterCloudEventSource",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "IngressClass", "RuntimeClass",
}


class ChartRenderError(RuntimeError):
    """A release cannot be rendered: no vendored chart at its version, or helm failed."""


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are megabytes
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_SafeLoader):  # type: ignore[misc, valid-type]
    """Safe loader that reads YAML 1.1's ``=`` value tag as a string (operator CRD enums)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_all(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=_Loader) if isinstance(d, dict)]


def dump(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_SafeDumper, sort_keys=False)


# --- the cluster's Kubernetes version ------------------------------------------------------
def major_minor(version: str) -> str:
    """'1.36' or '1.36.2' -> '1.36'."""
    match = re.match(r"^v?(\d+\.\d+)(\.\d+)?$", str(version))
    if not match:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return match.group(1)


def kind_node_minor(config_path: Path = KIND_CONFIG) -> str:
    """The minor of the kind node image every node of deploy/kind/cluster.yaml runs."""
    doc = yaml.safe_load(config_path.read_text())
    minors = set()
    for node in doc.get("nodes") or []:
        match = _NODE_IMAGE.match(str(node.get("image", "")))
        if not match:
            raise ValueError(f"{config_path}: node image {node.get('image')!r} is not a pinned kindest/node:vX.Y.Z")
        minors.add(match.group("minor"))
    if len(minors) != 1:
        raise ValueError(f"{config_path}: nodes run different Kubernetes minors {sorted(minors)}")
    return minors.pop()


def cluster_kube_version(config: Any) -> str:
    """The Kubernetes minor the stack's cluster runs: kind's node image, or aks'
    ``kubernetesVersion``."""
    return kind_node_minor() if config.target == "kind" else major_minor(config.kubernetes_version)


# --- releases --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    chart: str
    version: str
    values: dict[str, Any]
    resource: str
    """The Pulumi resource name of the Release (e.g. ``keda-release``)."""

    @property
    def chart_dir(self) -> Path:
        return CHARTS_DIR / self.chart


@dataclass
class RenderedRelease:
    release: Release
    kube_version: str
    objects: list[dict[str, Any]] = field(default_factory=list)


def releases_of(result: Any) -> list[Release]:
    """Every ``helm.v3.Release`` the program registered, with the inputs the provider gets
    (secret values redacted: a chart must never need one in its values)."""
    found = []
    for res in result.resources:
        if res.type != RELEASE_TYPE:
            continue
        inputs = redacted_inputs(res)
        found.append(Release(name=inputs.get("name") or res.name, namespace=inputs["namespace"],
                             chart=inputs["chart"], version=str(inputs["version"]),
                             values=inputs.get("values") or {}, resource=res.name))
    return found


def _check_vendored(release: Release) -> None:
    chart_yaml = release.chart_dir / "Chart.yaml"
    if not chart_yaml.is_file():
        raise ChartRenderError(f"release {release.name}: chart {release.chart!r} is not vendored in charts/")
    vendored = str(yaml.safe_load(chart_yaml.read_text())["version"])
    if vendored != release.version:
        raise ChartRenderError(f"release {release.name}: installs {release.chart} {release.version}, "
                               f"but charts/{release.chart} is {vendored} (run tools/vendor_charts.py)")


def template(release: Release, kube_version: str, helm: Path | None = None) -> RenderedRelease:
    """``helm template`` of one release; namespaced objects get the release namespace."""
    _check_vendored(release)
    helm = helm or find_helm()
    with tempfile.TemporaryDirectory(prefix="helm-values-") as tmp:
        values = Path(tmp) / "values.yaml"
        values.write_text(yaml.safe_dump(release.values, sort_keys=False))
        cmd = [str(helm), "template", release.name, str(release.chart_dir), "--namespace", release.namespace,
               "--values", str(values), "--kube-version", kube_version, "--include-crds"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=HELM_TIMEOUT_SECONDS)
    if proc.returncode != 0:
        raise ChartRenderError(f"helm template {release.name} ({release.chart} {release.version}) failed: "
                               f"{proc.stderr.strip()[-3000:]}")
    objects = load_all(proc.stdout)
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        if obj.get("kind") not in CLUSTER_SCOPED and not meta.get("namespace"):
            meta["namespace"] = release.namespace
    return RenderedRelease(release, kube_version, objects)


def render_releases(result: Any, helm: Path | None = None) -> list[RenderedRelease]:
    """Every release of a ``tools.render_mocks.RenderResult``, rendered for its cluster's version."""
    kube_version = cluster_kube_version(result.config)
    return [template(rel, kube_version, helm) for rel in releases_of(result)]


def _file_name(index: int, obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{index:03d}-{str(obj.get('kind', 'unknown')).lower()}-{meta.get('namespace') or 'cluster'}-{meta.get('name', 'unnamed')}.yaml"


def remove_stale(rendered: list[RenderedRelease], out: Path) -> list[Path]:
    """Remove ``OUT/helm/<release>/`` of every release an earlier render into ``out`` wrote and
    this one has not (monitoring turned off): nothing stale is left beside the render."""
    current = {rr.release.name for rr in rendered}
    stale = [old.parent for old in (out / "helm").glob("*/release.yaml") if old.parent.name not in current]
    for folder in stale:
        shutil.rmtree(folder)
    return stale


def write_releases(rendered: list[RenderedRelease], out: Path) -> list[Path]:
    """``OUT/helm/<release>/``: release.yaml and one file per object."""
    written: list[Path] = []
    for rr in rendered:
        rel_dir = out / "helm" / rr.release.name
        rel_dir.mkdir(parents=True, exist_ok=True)
        for stale in rel_dir.glob("*.yaml"):
            stale.unlink()
        (rel_dir / "release.yaml").write_text(yaml.safe_dump({
            "name": rr.release.name, "namespace": rr.release.namespace, "chart": rr.release.chart,
            "version": rr.release.version, "kubeVersion": rr.kube_version, "pulumiResource": rr.release.resource,
            "values": rr.release.values,
        }, sort_keys=False))
        for i, obj in enumerate(rr.objects, start=1):
            path = rel_dir / _file_name(i, obj)
            path.write_text(dump(obj))
            written.append(path)
    return written


def load_release_dir(rel_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(release.yaml, objects) of one ``OUT/helm/<release>`` directory."""
    meta = yaml.safe_load((rel_dir / "release.yaml").read_text())
    objects = []
    for path in sorted(p for p in rel_dir.glob("*.yaml") if p.name != "release.yaml"):
        docs = load_all(path.read_text())
        if len(docs) != 1:
            raise ValueError(f"{path}: expected one object per file, found {len(docs)}")
        objects.append(docs[0])
    return meta, objects
