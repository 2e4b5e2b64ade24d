"""One entry point: validate any rendered object against the right schema."""

from __future__ import annotations

from typing import Any

from .k8s_schema import validate_k8s_object
from .keda_schema import is_keda, validate_keda_object
from .prom_schema import is_monitoring, validate_monitoring_object


def validate_object(obj: dict[str, Any], version: str | None = None) -> list[str]:
    """``keda.sh`` and ``monitoring.coreos.com`` kinds against their tightened CRDs, the rest
    against Kubernetes ``version`` (default: the kind stack's pinned minor)."""
    if not isinstance(obj, dict):
        return [f"not an object: {obj!r}"]
    if is_keda(obj):
        return validate_keda_object(obj, version)
    if is_monitoring(obj):
        return validate_monitoring_object(obj, version)
    return validate_k8s_object(obj, version)


def validate_objects(objects: list[dict[str, Any]], version: str | None = None) -> list[str]:
    problems: list[str] = []
    for obj in objects:
        problems += validate_object(obj, version)
    return problems
