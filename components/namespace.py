"""The app namespace (Pod Security Standards: restricted) and the Redis credentials
Secret that pods (secretKeyRef) and KEDA (TriggerAuthentication) read."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from components import k8s as kx


@dataclass(frozen=True, kw_only=True)
class AppNamespaceArgs:
    name: str
    """Namespace name (DNS-1123 label)."""
    pod_security: str = "restricted"
    """Pod Security Standard enforced by the namespace labels."""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("AppNamespaceArgs.name must not be empty")
        if self.pod_security not in ("restricted", "baseline", "privileged"):
            raise ValueError("AppNamespaceArgs.pod_security must be restricted|baseline|privileged")


class AppNamespace(pulumi.ComponentResource):
    name: Output[str]

    def __init__(self, name: str, args: AppNamespaceArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:AppNamespace", name, None, opts)
        ns = kx.restricted_namespace(f"{name}-ns", args.name, self, args.pod_security, extra_labels={
            "pod-security.kubernetes.io/warn": args.pod_security,
            "pod-security.kubernetes.io/audit": args.pod_security,
        })
        self.name = ns.metadata.name
        self.register_outputs({"name": self.name})


@dataclass(frozen=True, kw_only=True)
class RedisAuthArgs:
    namespace: pulumi.Input[str]
    """Namespace of the Secret (the app namespace)."""
    password: pulumi.Input[str]
    """The Redis password (a secret Output)."""
    secret_name: str = "redis-auth"
    """Name of the Kubernetes Secret; key ``password``."""

    def __post_init__(self) -> None:
        if not self.secret_name:
            raise ValueError("RedisAuthArgs.secret_name must not be empty")


class RedisAuth(pulumi.ComponentResource):
    """The only place the Redis password lands in Kubernetes: an Opaque Secret."""

    secret_name: Output[str]

    def __init__(self, name: str, args: RedisAuthArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:RedisAuth", name, None, opts)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": args.secret_name, "namespace": args.namespace, "labels": kx.labels("redis-auth")},
            type="Opaque",
            string_data={kx.PASSWORD_KEY: Output.secret(args.password)},
            opts=ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
        )
        self.secret_name = secret.metadata.name
        self.register_outputs({"secretName": self.secret_name})
