"""Built-in Kubernetes kinds against Kubernetes 1.31's OpenAPI schema, strict.

``kubernetes_validate.validate(obj, "1.31", strict=True)``: the ``-strict`` schemas set
``additionalProperties: false`` everywhere, so an unknown or misspelt field fails
(without ``strict=True`` it would pass silently). kubernetes-validate 1.37.0 ships a
1.31.0 schema set, and ``validate`` returns the version it used: we check it is 1.31.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError

from .manifests import ref

K8S_VERSION = "1.31"


def validate_k8s_object(obj: dict[str, Any]) -> list[str]:
    """Problems with one built-in object; ``[]`` if it validates.

    A kind with no schema in Kubernetes 1.31 is a problem too (a typo in ``kind`` or
    ``apiVersion`` must not pass as "unknown, skipped").
    """
    where = ref(obj)
    if not isinstance(obj.get("apiVersion"), str) or not isinstance(obj.get("kind"), str):
        return [f"{where}: apiVersion and kind must be strings"]
    try:
        used = kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path) or "<root>"
        return [f"{where}: {path}: {err.message}"]
    except SchemaNotFoundError as err:
        return [f"{where}: {err.message}"]
    if used != K8S_VERSION:
        return [f"{where}: validated against Kubernetes {used}, not {K8S_VERSION}"]
    problems = []
    if not (obj.get("metadata") or {}).get("name"):
        problems.append(f"{where}: metadata.name is required")
    return problems
