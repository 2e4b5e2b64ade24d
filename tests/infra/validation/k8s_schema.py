"""Built-in Kubernetes kinds against the OpenAPI schema of a given Kubernetes minor, strict.

``kubernetes_validate.validate(obj, version, strict=True)``: the ``-strict`` schemas set
``additionalProperties: false`` everywhere, so an unknown or misspelt field fails
(without ``strict=True`` it would pass silently). Each stack is validated against the
minor it pins (``k8s_versions.stack_version``: the kind node image, the aks
``kubernetesVersion``); kubernetes-validate 1.37.0 ships strict schemas up to 1.37, and
``validate`` returns the version it used: we check it is the one asked for.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError

from .k8s_versions import kind_version
from .manifests import ref


def validate_k8s_object(obj: dict[str, Any], version: str | None = None) -> list[str]:
    """Problems with one built-in object against Kubernetes ``version`` (default: the kind
    stack's); ``[]`` if it validates.

    A kind with no schema in that version is a problem too (a typo in ``kind`` or
    ``apiVersion`` must not pass as "unknown, skipped").
    """
    version = version or kind_version()
    where = ref(obj)
    if not isinstance(obj.get("apiVersion"), str) or not isinstance(obj.get("kind"), str):
        return [f"{where}: apiVersion and kind must be strings"]
    try:
        used = kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "<root>"
        return [f"{where}: {path}: {err.message}"]
    except SchemaNotFoundError as err:
        return [f"{where}: {err.message}"]
    if used != version:
        return [f"{where}: validated against Kubernetes {used}, not {version}"]
    problems = []
    if not (obj.get("metadata") or {}).get("name"):
        problems.append(f"{where}: metadata.name is required")
    return problems
