"""NetworkPolicies of the app namespace: default deny (ingress + egress), then the few
flows the platform needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components import k8s as kx
from components.endpoint import RedisEndpoint

NAME_LABEL = "app.kubernetes.io/name"
NS_LABEL = "kubernetes.io/metadata.name"
#: The label a pod carries to call the cache API (``cacheApiCallers: labelled``).
CACHE_API_CLIENT_LABEL = "redis-keda-platform/cache-api-client"


@dataclass(frozen=True, kw_only=True)
class NetworkPoliciesArgs:
    namespace: pulumi.Input[str]
    """App namespace."""
    endpoint: RedisEndpoint
    """Redis: in the namespace (``pod_labels`` set) or outside the cluster (egress to
    ``endpoint.egress_cidrs`` on its port)."""
    redis_clients: Sequence[str] = ("worker", "worker-sweeper", "producer", "cache-api")
    """``app.kubernetes.io/name`` of the pods that may talk to Redis."""
    keda_namespace: pulumi.Input[str] = "keda"
    """Namespace of the KEDA operator (measures the queue length in Redis)."""
    api_app: str = "cache-api"
    """``app.kubernetes.io/name`` of the cache API pods."""
    api_port: int = 8000
    """Port the cache API accepts traffic on."""
    cache_api_callers: str = "labelled"
    """``labelled``: only pods labelled ``CACHE_API_CLIENT_LABEL: "true"`` (any namespace) and
    the scraper reach ``api_port``; ``cluster``: any pod."""
    scraper_namespace: pulumi.Input[str] | None = None
    """Namespace of Prometheus; None (monitoring off) = no metrics ingress at all."""
    metrics_ports: Mapping[str, int] = field(default_factory=dict)
    """``app.kubernetes.io/name`` -> its metrics port, opened to ``scraper_namespace`` only."""

    def __post_init__(self) -> None:
        if self.endpoint.pod_labels is None and not self.endpoint.egress_cidrs:
            raise ValueError("NetworkPoliciesArgs.endpoint: an out-of-cluster Redis needs egress_cidrs")
        if not self.redis_clients:
            raise ValueError("NetworkPoliciesArgs.redis_clients must not be empty")
        if self.cache_api_callers not in ("labelled", "cluster"):
            raise ValueError(f"NetworkPoliciesArgs.cache_api_callers must be 'labelled' or 'cluster', "
                             f"not {self.cache_api_callers!r}")
        if not 0 < self.api_port < 65536:
            raise ValueError("NetworkPoliciesArgs.api_port out of range")


class NetworkPolicies(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:NetworkPolicies", name, None, opts)
        self._name = name
        self._ns = args.namespace
        clients = {"matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": list(args.redis_clients)}]}
        ep = args.endpoint

        self._policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        self._policy("allow-dns", {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{
                "to": [{
                    "namespaceSelector": {"matchLabels": {NS_LABEL: "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }],
        })
        if ep.pod_labels is not None:
            redis_pods = {"matchLabels": dict(ep.pod_labels)}
            to_redis: list[dict[str, Any]] = [{"podSelector": redis_pods}]
            self._policy("redis-ingress", {
                "podSelector": redis_pods,
                "policyTypes": ["Ingress"],
                "ingress": [{
                    "from": [
                        {"podSelector": clients},
                        {"namespaceSelector": {"matchLabels": {NS_LABEL: args.keda_namespace}}},
                    ],
                    "ports": [{"protocol": "TCP", "port": ep.port}],
                }],
            })
        else:
            # Azure Redis behind its private endpoint: the endpoint subnet, computed from the
            # same config value as the subnet itself.
            to_redis = [{"ipBlock": {"cidr": c}} for c in ep.egress_cidrs or ()]
        self._policy("redis-egress", {
            "podSelector": clients,
            "policyTypes": ["Egress"],
            "egress": [{"to": to_redis, "ports": [{"protocol": "TCP", "port": ep.port}]}],
        })
        api_ingress: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": args.api_port}]}
        if args.cache_api_callers == "labelled":
            callers: list[dict[str, Any]] = [
                {"namespaceSelector": {}, "podSelector": {"matchLabels": {CACHE_API_CLIENT_LABEL: "true"}}}]
            if args.scraper_namespace is not None:  # /metrics is on the API port
                callers.append({"namespaceSelector": {"matchLabels": {NS_LABEL: args.scraper_namespace}}})
            api_ingress["from"] = callers
        self._policy("cache-api-ingress", {
            "podSelector": {"matchLabels": {NAME_LABEL: args.api_app}},
            "policyTypes": ["Ingress"],
            "ingress": [api_ingress],
        })
        if args.scraper_namespace is not None:
            scraper = {"namespaceSelector": {"matchLabels": {NS_LABEL: args.scraper_namespace}}}
            for app, port in args.metrics_ports.items():
                self._policy(f"{app}-metrics-ingress", {
                    "podSelector": {"matchLabels": {NAME_LABEL: app}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [scraper], "ports": [{"protocol": "TCP", "port": port}]}],
                })
        self.register_outputs({})

    def _policy(self, suffix: str, spec: dict[str, Any]) -> k8s.networking.v1.NetworkPolicy:
        return k8s.networking.v1.NetworkPolicy(
            f"{self._name}-{suffix}",
            metadata={"name": suffix, "namespace": self._ns, "labels": {"app.kubernetes.io/part-of": kx.PART_OF}},
            spec=spec,
            opts=ResourceOptions(parent=self),
        )
