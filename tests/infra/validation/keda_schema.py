"""``keda.sh`` objects against KEDA 2.20.2's own CRD schemas, tightened.

The CRDs (copied verbatim from kedacore/keda) leave ``additionalProperties`` unset, so a
misspelt field (``minReplicas`` for ``minReplicaCount``) would validate. We take each
served version's ``openAPIV3Schema`` and, recursively, set ``additionalProperties:
false`` on every object schema that lists ``properties`` and says nothing else about
extra keys (no ``additionalProperties``, no ``x-kubernetes-preserve-unknown-fields``).
``apiVersion`` and ``kind`` are pinned to the CRD's group/version and kind, and
``metadata`` (just ``type: object`` in a CRD) is checked as the stack's Kubernetes
ObjectMeta (strict), with ``name`` required. The one CEL rule in these CRDs (ScaledObject
``minReplicaCount <= maxReplicaCount``, max defaulting to 100) is checked by hand.

Trigger ``metadata`` stays a string map here; ``scaler_params`` checks its keys.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

from .k8s_schema import validate_k8s_object
from .k8s_versions import kind_version
from .manifests import ref
from .paths import keda_schema_dir

GROUP = "keda.sh"
CRD_FILES = (
    "keda.sh_scaledobjects.yaml",
    "keda.sh_scaledjobs.yaml",
    "keda.sh_triggerauthentications.yaml",
    "keda.sh_clustertriggerauthentications.yaml",
)
_K8S_DEFS_ID = "https://kubernetes.io/api/_definitions.json"
_OBJECT_META_REF = f"{_K8S_DEFS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_COMBINATORS = ("allOf", "anyOf", "oneOf")


def tighten(schema: Any) -> Any:
    """A copy of ``schema`` where unknown properties fail (see module docstring)."""
    schema = copy.deepcopy(schema)
    _tighten_in_place(schema)
    return schema


def _tighten_in_place(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _tighten_in_place(item)
        return
    if not isinstance(node, dict):
        return
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    for child in (node.get("properties") or {}).values():
        _tighten_in_place(child)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            _tighten_in_place(node[key])
    for key in _COMBINATORS:
        if isinstance(node.get(key), list):
            _tighten_in_place(node[key])


def _k8s_definitions(version: str) -> dict[str, Any]:
    base = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    with resources.as_file(base / f"v{version}.0-local-strict" / "_definitions.json") as p:
        return json.loads(Path(p).read_text())


@functools.cache
def _registry(version: str) -> Registry:
    return Resource.from_contents(_k8s_definitions(version)) @ Registry()


def _object_schema(crd: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    schema = tighten(version["schema"]["openAPIV3Schema"])
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"const": f"{group}/{version['name']}"}
    props["kind"] = {"const": kind}
    props["metadata"] = {"allOf": [{"$ref": _OBJECT_META_REF}, {"required": ["name"]}]}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    schema["additionalProperties"] = False
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


@functools.cache
def load_schemas(schema_dir: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """``(apiVersion, kind) -> tightened schema`` for every served version of the 4 CRDs."""
    base = Path(schema_dir) if schema_dir else keda_schema_dir()
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for filename in CRD_FILES:
        crd = yaml.safe_load((base / filename).read_text())
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            schema = _object_schema(crd, version)
            api_version = schema["properties"]["apiVersion"]["const"]
            schemas[(api_version, crd["spec"]["names"]["kind"])] = schema
    return schemas


@functools.cache
def _validator(api_version: str, kind: str, version: str) -> jsonschema.protocols.Validator | None:
    schema = load_schemas().get((api_version, kind))
    if schema is None:
        return None
    return jsonschema.Draft202012Validator(schema, registry=_registry(version))


def is_keda(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).split("/")[0] == GROUP


def _cel_rules(obj: dict[str, Any]) -> list[str]:
    problems = []
    if obj.get("kind") == "ScaledObject":
        spec = obj.get("spec") or {}
        lo, hi = spec.get("minReplicaCount"), spec.get("maxReplicaCount", 100)
        if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
            problems.append("spec: minReplicaCount must be less than or equal to maxReplicaCount")
    return problems


def validate_keda_object(obj: dict[str, Any], version: str | None = None) -> list[str]:
    """Problems with one ``keda.sh`` object (its metadata and embedded JobSpec against
    Kubernetes ``version``, default the kind stack's); ``[]`` if it validates."""
    version = version or kind_version()
    where = ref(obj)
    validator = _validator(str(obj.get("apiVersion")), str(obj.get("kind")), version)
    if validator is None:
        known = ", ".join(f"{a} {k}" for a, k in sorted(load_schemas()))
        return [f"{where}: no KEDA CRD for {obj.get('apiVersion')} {obj.get('kind')} (known: {known})"]
    problems = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path))):
        path = ".".join(str(p) for p in err.path) or "<root>"
        problems.append(f"{where}: {path}: {err.message}")
    problems += [f"{where}: {p}" for p in _cel_rules(obj)]
    problems += _embedded_job_problems(obj, version)
    return problems


def _embedded_job_problems(obj: dict[str, Any], version: str) -> list[str]:
    """A ScaledJob's ``jobTargetRef`` is a batch/v1 JobSpec: check it as one, strictly.

    The CRD embeds a copy of the JobSpec schema; Kubernetes' own (strict) schema is the
    reference the Job controller will apply when KEDA creates the Jobs.
    """
    if obj.get("kind") != "ScaledJob" or not isinstance((obj.get("spec") or {}).get("jobTargetRef"), dict):
        return []
    meta = obj.get("metadata") or {}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": meta.get("name", "scaledjob"), "namespace": meta.get("namespace")},
        "spec": obj["spec"]["jobTargetRef"],
    }
    return [
        f"{ref(obj)}: spec.jobTargetRef (as a batch/v1 JobSpec): {p.split(': ', 1)[1]}"
        for p in validate_k8s_object(job, version)
    ]
