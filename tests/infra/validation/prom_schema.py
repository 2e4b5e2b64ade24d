"""``monitoring.coreos.com`` objects against the Prometheus Operator v0.93.1 CRDs that
kube-prometheus-stack 88.5.3 installs (read from the vendored chart, charts/), tightened exactly like the KEDA ones
(``keda_schema.tighten``): unknown fields fail, ``apiVersion``/``kind`` are pinned and
``metadata`` is the stack's Kubernetes ObjectMeta with ``name`` required. These CRDs carry no CEL
rules. Rule expressions are PromQL strings here; ``promtool`` checks them
(tests/monitoring).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema

from .k8s_versions import kind_version
from .keda_schema import _object_schema, _registry
from .manifests import ref, yaml_load_all
from .paths import kps_crd_dir

GROUP = "monitoring.coreos.com"


def _crd(path: Path) -> dict[str, Any]:
    """The CustomResourceDefinition in a file (the vendored files start with a source comment)."""
    docs = [d for d in yaml_load_all(path.read_text()) if isinstance(d, dict)]
    crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
    if len(crds) != 1:
        raise ValueError(f"{path}: expected one CustomResourceDefinition, found {len(crds)}")
    return crds[0]


@functools.cache
def load_schemas(schema_dir: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> tightened schema`` for every served version of every CRD the
    chart installs (ServiceMonitor, PodMonitor, PrometheusRule, Prometheus, Alertmanager, ...)."""
    base = Path(schema_dir) if schema_dir else kps_crd_dir()
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(base.glob("crd-*.yaml")):
        crd = _crd(path)
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schema = _object_schema(crd, version)
                schemas[(schema["properties"]["apiVersion"]["const"], crd["spec"]["names"]["kind"])] = schema
    return schemas


@functools.cache
def _validator(api_version: str, kind: str, version: str) -> jsonschema.protocols.Validator | None:
    schema = load_schemas().get((api_version, kind))
    return None if schema is None else jsonschema.Draft202012Validator(schema, registry=_registry(version))


def is_monitoring(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).split("/")[0] == GROUP


def validate_monitoring_object(obj: dict[str, Any], version: str | None = None) -> list[str]:
    """Problems with one ``monitoring.coreos.com`` object (metadata against Kubernetes
    ``version``, default the kind stack's); ``[]`` if it validates."""
    where = ref(obj)
    validator = _validator(str(obj.get("apiVersion")), str(obj.get("kind")), version or kind_version())
    if validator is None:
        known = ", ".join(f"{a} {k}" for a, k in sorted(load_schemas()))
        return [f"{where}: no Prometheus Operator CRD for {obj.get('apiVersion')} {obj.get('kind')} (known: {known})"]
    return [
        f"{where}: {'.'.join(str(p) for p in err.path) or '<root>'}: {err.message}"
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
    ]
