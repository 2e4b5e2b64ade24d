"""Small builders shared by the workload components: labels, hardened security
contexts, resources, the Redis env block. Plain dicts in Kubernetes' own camelCase."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components import versions

PART_OF = "redis-keda-platform"
# The key of the Redis password inside the Kubernetes Secret that apps and KEDA read.
PASSWORD_KEY = "password"


def labels(app: str, component: str | None = None) -> dict[str, str]:
    """Selector-safe labels (stable across updates)."""
    out = {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": PART_OF}
    if component:
        out["app.kubernetes.io/component"] = component
    return out


def restricted_namespace(resource_name: str, name: str, parent: pulumi.Resource,
                         pod_security: str = "restricted", extra_labels: Mapping[str, str] | None = None,
                         ) -> k8s.core.v1.Namespace:
    """A namespace that enforces a Pod Security Standard (``restricted`` unless told)."""
    return k8s.core.v1.Namespace(
        resource_name,
        metadata={
            "name": name,
            "labels": {
                "app.kubernetes.io/part-of": PART_OF,
                "pod-security.kubernetes.io/enforce": pod_security,
                "pod-security.kubernetes.io/enforce-version": "latest",
                **(extra_labels or {}),
            },
        },
        opts=ResourceOptions(parent=parent),
    )


def service_account(name: str, app: str, namespace: pulumi.Input[str], labels: Mapping[str, str],
                    parent: pulumi.Resource) -> k8s.core.v1.ServiceAccount:
    """``<name>-sa``: the app's own ServiceAccount, named after the app, with no API token mounted."""
    return k8s.core.v1.ServiceAccount(
        f"{name}-sa",
        metadata={"name": app, "namespace": namespace, "labels": dict(labels)},
        automount_service_account_token=False,
        opts=ResourceOptions(parent=parent),
    )


def pod_spec(service_account: Any, containers: list[dict[str, Any]], *, grace_seconds: int = 30,
             volumes: list[dict[str, Any]] | None = None, uid: int = versions.APP_UID, **extra: Any) -> dict[str, Any]:
    """The hardened pod spec every workload shares: its own ServiceAccount and no API token,
    no service-link env vars, a non-root ``restricted`` security context."""
    spec: dict[str, Any] = {
        "serviceAccountName": service_account.metadata.name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(uid),
        "terminationGracePeriodSeconds": grace_seconds,
        "containers": containers,
    }
    if volumes:
        spec["volumes"] = volumes
    spec.update(extra)
    return spec


def pod_security_context(uid: int = versions.APP_UID, gid: int | None = None) -> dict[str, Any]:
    gid = uid if gid is None else gid
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(uid: int = versions.APP_UID, gid: int | None = None) -> dict[str, Any]:
    gid = uid if gid is None else gid
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(cpu_req: str, mem_req: str, cpu_lim: str, mem_lim: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu_req, "memory": mem_req},
        "limits": {"cpu": cpu_lim, "memory": mem_lim},
    }


def tmp_volume(size: str = "64Mi") -> dict[str, Any]:
    return {"name": "tmp", "emptyDir": {"sizeLimit": size}}


TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}


def secret_env(name: str, secret_name: pulumi.Input[str], key: str = PASSWORD_KEY) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


def redis_env(endpoint: Any, secret_name: pulumi.Input[str], db: int) -> list[dict[str, Any]]:
    """The contract's common variables (docs/contract.md): endpoint + password via secretKeyRef."""
    return [
        {"name": "REDIS_HOST", "value": endpoint.host},
        {"name": "REDIS_PORT", "value": str(endpoint.port)},
        secret_env("REDIS_PASSWORD", secret_name),
        {"name": "REDIS_TLS", "value": "true" if endpoint.tls else "false"},
        {"name": "REDIS_DB", "value": str(db)},
    ]


def exec_probe(command: list[str], period: int = 15, timeout: int = 10, failures: int = 3, initial: int = 10) -> dict[str, Any]:
    return {
        "exec": {"command": command},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def http_probe(path: str, port: int | str, period: int = 10, failures: int = 3, initial: int = 5) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def checkov_skips(skips: Mapping[str, str]) -> dict[str, str]:
    """metadata.annotations that tell checkov why a check does not apply (the list with the
    reasons: docs/security.md, "Checkov skips"; tests keep the two equal)."""
    return {f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(skips.items(), start=1)}


def fmt_number(value: float) -> str:
    """1.0 -> '1', 0.5 -> '0.5' (env values are strings)."""
    return f"{value:g}"


# --- checkov checks that do not apply, with the reason (listed in docs/security.md) -------
_TAG_PINNED = {
    "CKV_K8S_43": "images are pinned by an immutable version tag; app images are built locally so no digest exists before the build; a digest can be set in the image config keys",
    "CKV_K8S_15": "pinned immutable tags make IfNotPresent deterministic; kind loads locally built images which Always would try to pull; imagePullPolicy is a config key",
}
APP_SKIPS = {
    **_TAG_PINNED,
    "CKV_K8S_35": "the app contract reads REDIS_PASSWORD from the environment; it comes from a Secret via secretKeyRef and is never a literal",
}
REDIS_SKIPS = {
    **APP_SKIPS,
    "CKV_K8S_40": "the official redis image runs as its own redis user uid 999 (non-root)",
}
