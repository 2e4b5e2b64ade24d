"""KEDA from its official Helm chart, pinned (components/versions.py), in its own namespace,
fenced by NetworkPolicies of ours (components/network.py ``keda_policy_specs``: default deny,
then DNS, the API server, Redis and the flows KEDA's own pods need)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components import k8s as kx
from components import versions
from components.endpoint import RedisEndpoint
from components.network import create_policies, keda_policy_specs


@dataclass(frozen=True, kw_only=True)
class KedaArgs:
    namespace: str = "keda"
    """Namespace of the release (created here, PSS restricted)."""
    watch_namespace: pulumi.Input[str] = ""
    """Only watch this namespace (least privilege); empty = all namespaces."""
    chart_version: str = versions.KEDA_CHART_VERSION
    """Pinned chart version."""
    image_tag: str = versions.KEDA_APP_VERSION
    """Tag of the three KEDA images (the chart's appVersion)."""
    endpoint: RedisEndpoint | None = None
    """The Redis its triggers read: the operator's only egress besides DNS and the API server
    (required by ``Keda``; the chart values do not need it)."""
    scraper_namespace: pulumi.Input[str] | None = None
    """Namespace of Prometheus, let in to the operator's metrics port; None (monitoring off) = none."""

    def __post_init__(self) -> None:
        if not self.namespace:
            raise ValueError("KedaArgs.namespace must not be empty")
        if not self.chart_version:
            raise ValueError("KedaArgs.chart_version must be pinned")


def _component_security() -> dict[str, Any]:
    return {
        "capabilities": {"drop": ["ALL"]},
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


#: The KEDA images are distroless "nonroot": uid/gid 65532.
KEDA_UID = 65532


def _pod_security() -> dict[str, Any]:
    # Non-root with the images' own uid made explicit: the chart sets no runAsUser, and
    # checkov's high-UID check (CKV_K8S_40) cannot see an image's USER.
    return {"runAsNonRoot": True, "runAsUser": KEDA_UID, "runAsGroup": KEDA_UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def keda_values(args: KedaArgs) -> dict[str, Any]:
    """Chart values (camelCase, as the chart reads them)."""
    def res(cpu_req: str, mem_req: str, cpu_lim: str, mem_lim: str) -> dict[str, Any]:
        return {"requests": {"cpu": cpu_req, "memory": mem_req}, "limits": {"cpu": cpu_lim, "memory": mem_lim}}

    return {
        "image": {
            "keda": {"registry": "", "repository": versions.KEDA_OPERATOR_IMAGE, "tag": args.image_tag},
            "metricsApiServer": {"registry": "", "repository": versions.KEDA_METRICS_API_SERVER_IMAGE, "tag": args.image_tag},
            "webhooks": {"registry": "", "repository": versions.KEDA_WEBHOOKS_IMAGE, "tag": args.image_tag},
            "pullPolicy": "IfNotPresent",
        },
        "crds": {"install": True},
        "watchNamespace": args.watch_namespace,
        "securityContext": {
            "operator": _component_security(),
            "metricServer": _component_security(),
            "webhooks": _component_security(),
        },
        "podSecurityContext": {
            "operator": _pod_security(),
            "metricServer": _pod_security(),
            "webhooks": _pod_security(),
        },
        "resources": {
            "operator": res("100m", "100Mi", "1", "1000Mi"),
            "metricServer": res("100m", "100Mi", "1", "1000Mi"),
            "webhooks": res("10m", "10Mi", "50m", "100Mi"),
        },
        "http": {"minTlsVersion": "TLS12"},
        # The operator's Prometheus metrics (scaler values and errors) on its "metrics" port; the
        # monitoring component scrapes them with its own PodMonitor (no CRD dependency here).
        "prometheus": {"operator": {"enabled": True, "port": versions.KEDA_OPERATOR_METRICS_PORT}},
    }


class Keda(pulumi.ComponentResource):
    """Namespace + ``helm.v3.Release`` of the KEDA chart. Every KEDA custom resource must
    ``depends_on`` ``release`` (CRDs first on up; CRs removed first on destroy)."""

    release: k8s.helm.v3.Release
    namespace: pulumi.Output[str]
    network_policies: list[k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: KedaArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:Keda", name, None, opts)
        if args.endpoint is None:
            raise ValueError("KedaArgs.endpoint: KEDA's NetworkPolicies need the Redis its operator reaches")
        ns = kx.restricted_namespace(f"{name}-ns", args.namespace, self)
        self.namespace = ns.metadata.name
        # Before the release: its pods start with their flows allowed, never unfenced.
        self.network_policies = create_policies(name, self.namespace, keda_policy_specs(
            endpoint=args.endpoint, scraper_namespace=args.scraper_namespace,
            operator_metrics_port=versions.KEDA_OPERATOR_METRICS_PORT), self)
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name="keda",
            chart=versions.KEDA_CHART,
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.KEDA_CHART_REPO),
            namespace=ns.metadata.name,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            wait_for_jobs=True,
            timeout=600,
            values=keda_values(args),
            opts=ResourceOptions(parent=self, depends_on=list(self.network_policies)),
        )
        self.register_outputs({"namespace": self.namespace, "releaseStatus": self.release.status})
