"""Small builders shared by the workload components: labels, hardened security
contexts, resources, the Redis env block. Plain dicts in Kubernetes' own camelCase."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
                    parent: pulumi.Resource,
                    annotations: Mapping[str, pulumi.Input[str]] | None = None) -> k8s.core.v1.ServiceAccount:
    """``<name>-sa``: the app's own ServiceAccount, named after the app, with no API token mounted."""
    metadata: dict[str, Any] = {"name": app, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return k8s.core.v1.ServiceAccount(
        f"{name}-sa",
        metadata=metadata,
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

#: Where the apps read the Redis password: the Secret mounted as a volume (not as an env
#: variable), which the kubelet updates in place when the Secret changes, and the apps read
#: on every new connection (``REDIS_PASSWORD_FILE``, docs/contract.md): a replaced key needs
#: no restart (docs/redis-targets.md#rotating-the-access-key).
REDIS_AUTH_DIR = "/var/run/secrets/redis-auth"
REDIS_AUTH_MOUNT = {"name": "redis-auth", "mountPath": REDIS_AUTH_DIR, "readOnly": True}


def redis_auth_volume(secret_name: pulumi.Input[str]) -> dict[str, Any]:
    """The password key of the Secret only, readable by the pod's group (``fsGroup``), no one else."""
    return {"name": "redis-auth", "secret": {"secretName": secret_name, "defaultMode": 0o440,
                                             "items": [{"key": PASSWORD_KEY, "path": PASSWORD_KEY}]}}


def secret_env(name: str, secret_name: pulumi.Input[str], key: str = PASSWORD_KEY) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}}


#: The ServiceAccount annotation the workload identity webhook reads, and the pod label that
#: makes it inject the federated token file and the AZURE_* variables.
WORKLOAD_IDENTITY_CLIENT_ID = "azure.workload.identity/client-id"
WORKLOAD_IDENTITY_USE = "azure.workload.identity/use"


@dataclass(frozen=True)
class PodRedisAuth:
    """How an app pod signs in to Redis: the key, from the mounted redis-auth Secret; or, with
    ``client_id`` (a workload identity's), an Entra token (``REDIS_SIGN_IN=entra``): then the
    Secret is neither mounted nor named in the pod."""

    secret_name: pulumi.Input[str]
    client_id: pulumi.Input[str] | None = None

    @property
    def entra(self) -> bool:
        return self.client_id is not None

    def env(self, endpoint: Any, db: int) -> list[dict[str, Any]]:
        """The contract's common variables (docs/contract.md): the endpoint, and how to sign in:
        the file of the mounted Secret (``volumes``, ``mounts``) or an Entra token."""
        credential = ({"name": "REDIS_SIGN_IN", "value": "entra"} if self.entra else
                      {"name": "REDIS_PASSWORD_FILE", "value": f"{REDIS_AUTH_DIR}/{PASSWORD_KEY}"})
        return [
            {"name": "REDIS_HOST", "value": endpoint.host},
            {"name": "REDIS_PORT", "value": str(endpoint.port)},
            credential,
            {"name": "REDIS_TLS", "value": "true" if endpoint.tls else "false"},
            {"name": "REDIS_DB", "value": str(db)},
        ]

    def volumes(self) -> list[dict[str, Any]]:
        """``/tmp``, and with the key the Secret's password file."""
        return [tmp_volume()] + ([] if self.entra else [redis_auth_volume(self.secret_name)])

    def mounts(self) -> list[dict[str, Any]]:
        return [TMP_MOUNT] + ([] if self.entra else [REDIS_AUTH_MOUNT])

    def pod_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {**labels, WORKLOAD_IDENTITY_USE: "true"} if self.entra else dict(labels)

    def sa_annotations(self) -> dict[str, pulumi.Input[str]]:
        return {WORKLOAD_IDENTITY_CLIENT_ID: self.client_id} if self.client_id is not None else {}


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
#: The apps read the password from the mounted Secret (REDIS_PASSWORD_FILE): no secret env.
APP_SKIPS = {**_TAG_PINNED}
REDIS_SKIPS = {
    **APP_SKIPS,
    "CKV_K8S_35": "redis-server (the server, or the replica sidecar's masterauth) takes its password from the "
                  "environment at start; it comes from a Secret via secretKeyRef and is never a literal",
    "CKV_K8S_40": "the official redis image runs as its own redis user uid 999 (non-root)",
}
