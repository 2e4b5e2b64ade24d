"""The stack variants we validate, rendered once per test run with ``tools/render.py`` (shared by
every pytest-xdist worker: tests/run_cache.py).

Every valid combination of stack × worker mode × cache API read path:
``replica-sidecar`` needs the in-cluster Redis, so it is rendered on ``local`` only (on
``aks`` it is a config error, which the infra tests assert). ``aks`` defaults to Azure
Managed Redis; one more variant renders it with Azure Cache for Redis (``azureRedis=classic``).

``python -m tests.infra.validation.render`` prints the variants, one per line
(``id stack key=value ...``): ``scripts/scan.sh`` reads them, so the CI scan and the
tests cover the same set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests import run_cache
from tools.helm_render import load_release_dir
from tools.variants import BY_ID, NETWORK_VARIANT_IDS, NO_MONITORING, OPEN_API, VARIANT_IDS, VARIANTS, Variant  # noqa: F401 - the tests import them from here

from .k8s_versions import stack_version
from .manifests import load_json, load_k8s_dir
from .paths import REPO_ROOT

RENDER_SCRIPT = REPO_ROOT / "tools" / "render.py"




@dataclass(frozen=True)
class ChartRelease:
    """One Helm release as ``helm template`` rendered it (``OUT/helm/<release>/``)."""

    name: str
    namespace: str
    chart: str
    version: str
    kube_version: str
    values: dict[str, Any]
    objects: list[dict[str, Any]]

    @property
    def key(self) -> tuple:
        """Same key, same objects: what a variant's release has in common with another's."""
        return (self.name, self.kube_version, repr(self.values))


def load_chart_releases(out_dir: Path) -> dict[str, ChartRelease]:
    found = {}
    for rel_dir in sorted((out_dir / "helm").glob("*/")):
        meta, objects = _load_release_dir_once(rel_dir)
        found[meta["name"]] = ChartRelease(meta["name"], meta["namespace"], meta["chart"], str(meta["version"]),
                                           str(meta["kubeVersion"]), meta.get("values") or {}, objects)
    return found


def _load_release_dir_once(rel_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``load_release_dir``, parsed once per run for each distinct content: keyed by the
    sha256 of every file's name and bytes, so what is read is exactly what is on disk."""
    digest = hashlib.sha256()
    for path in sorted(rel_dir.glob("*.yaml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return run_cache.value(f"release-dir:{digest.hexdigest()}", lambda: load_release_dir(rel_dir))


@dataclass(frozen=True)
class Rendered:
    variant: Variant
    out_dir: Path
    objects: list[dict[str, Any]]
    """The program's own Kubernetes objects (``OUT/k8s/``)."""
    azure_resources: list[dict[str, Any]]
    other_resources: list[dict[str, Any]]
    charts: dict[str, ChartRelease] = field(default_factory=dict)
    """Each Helm release, rendered by ``helm template`` (``OUT/helm/``), by release name."""

    @property
    def chart_objects(self) -> list[dict[str, Any]]:
        return [o for rel in self.charts.values() for o in rel.objects]

    @property
    def cluster_objects(self) -> list[dict[str, Any]]:
        """Everything the stack creates in the cluster: ours and the charts'."""
        return self.objects + self.chart_objects

    @property
    def k8s_version(self) -> str:
        """The Kubernetes minor this variant's stack pins (its manifests are validated against it)."""
        return stack_version(self.variant.stack, dict(self.variant.settings))

    @property
    def k8s_files(self) -> list[Path]:
        return sorted((self.out_dir / "k8s").glob("*.yaml"))

    def release(self, chart: str) -> ChartRelease | None:
        """The release of ``chart`` (``keda``, ``kube-prometheus-stack``), or None."""
        found = [r for r in self.charts.values() if r.chart == chart]
        return found[0] if found else None


_RENDER_LOCK = threading.Lock()


@contextlib.contextmanager
def shared_helm_templates():
    """While tools/render.py runs here: each distinct ``helm template`` (same release inputs,
    same Kubernetes version) is run and parsed once per test run, by whichever process asks
    first (tests/run_cache.py); the variants that share a release (most of them: the KEDA
    release is the same everywhere) read its parsed objects back, and each distinct
    ``OUT/helm/<release>/`` is YAML-dumped once and copied. The chart's megabytes of CRDs are
    the cost: parsing them took ~3 s per release and variant, dumping them ~2.5 s."""
    from tools import helm_render

    real, real_write = helm_render.template, helm_render.write_releases

    def key_of(release, kube_version, helm=None) -> str:
        return json.dumps([dataclasses.asdict(release), kube_version, str(helm)], sort_keys=True, default=str)

    def template(release, kube_version, helm=None):
        return run_cache.value(f"helm-template:{key_of(release, kube_version, helm)}",
                               lambda: real(release, kube_version, helm))

    def write_releases(rendered, out: Path) -> list[Path]:
        # Same inputs, same files: each distinct release directory is written (YAML-dumped)
        # once per run, then copied into every variant's OUT/helm/.
        written: list[Path] = []
        for rr in rendered:
            made = run_cache.directory(f"helm-dir:{key_of(rr.release, rr.kube_version)}",
                                       lambda d, rr=rr: real_write([rr], d))
            src, dst = made / "helm" / rr.release.name, out / "helm" / rr.release.name
            dst.mkdir(parents=True, exist_ok=True)
            for stale in dst.glob("*.yaml"):
                stale.unlink()
            for path in sorted(src.glob("*.yaml")):
                shutil.copyfile(path, dst / path.name)
                if path.name != "release.yaml":
                    written.append(dst / path.name)
        return written

    helm_render.template, helm_render.write_releases = template, write_releases
    try:
        yield
    finally:
        helm_render.template, helm_render.write_releases = real, real_write


def render_to(variant: Variant, out_dir: Path) -> None:
    """``tools/render.py``'s own entry point for a variant, in this process (one at a time:
    the Pulumi runtime's settings are global); ``RuntimeError`` with its output if it fails."""
    if not RENDER_SCRIPT.is_file():
        raise RuntimeError(f"{RENDER_SCRIPT} does not exist: nothing to validate")
    from tools import render as render_cli

    argv = [*variant.args, "--out", str(out_dir)]
    out, err = io.StringIO(), io.StringIO()
    with _RENDER_LOCK, shared_helm_templates(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = render_cli.main(argv)
    if code != 0:
        raise RuntimeError(f"render of {variant.id} failed (exit {code}): tools/render.py {' '.join(argv)}\n"
                           f"{out.getvalue()[-4000:]}\n{err.getvalue()[-4000:]}")


@functools.cache
def _render_dir(variant_id: str) -> Path:
    """The variant's render: made once per test run, shared by every pytest-xdist worker."""
    return run_cache.directory(f"render-cli:{variant_id}", lambda out: render_to(BY_ID[variant_id], out))


def render_all() -> list[Path]:
    """Render every variant; returns their directories, in VARIANT_IDS order."""
    return [_render_dir(v) for v in VARIANT_IDS]


@functools.cache
def rendered(variant_id: str) -> Rendered:
    """The variant's render, loaded: parsed once per test run and shared (pickled) with every
    pytest-xdist worker, since the charts' CRDs make it seconds of YAML per variant."""
    return run_cache.value(f"rendered:{variant_id}", lambda: _load_rendered(variant_id))


def rendered_variants(variant_ids: list[str]) -> list[Rendered]:
    """``rendered(v)`` for each of ``variant_ids``, in that order. Under pytest-xdist each
    worker starts at its own place in the list (gw1 at the second variant, ...), so at
    collection the workers render different variants side by side instead of all waiting
    for one to render every variant in turn."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    start = int(worker[2:]) % len(variant_ids) if worker[2:].isdigit() and variant_ids else 0
    for variant_id in variant_ids[start:] + variant_ids[:start]:
        rendered(variant_id)
    return [rendered(v) for v in variant_ids]


def _load_rendered(variant_id: str) -> Rendered:
    out = _render_dir(variant_id)
    azure = out / "azure-resources.json"
    other = out / "other-resources.json"
    return Rendered(
        BY_ID[variant_id],
        out,
        load_k8s_dir(out),
        load_json(azure) if azure.exists() else [],
        load_json(other) if other.exists() else [],
        load_chart_releases(out),
    )


def keda_namespace(r: Rendered, default: str = "keda") -> str:
    """The namespace of the KEDA Helm release (from other-resources.json)."""
    for res in r.other_resources:
        text = str(res).lower()
        if "keda" in text and "release" in str(res.get("type", "")).lower():
            props = res.get("properties") or res.get("inputs") or {}
            if props.get("namespace"):
                return str(props["namespace"])
    return default
