"""NetworkPolicies: default deny (ingress + egress), then the few flows the platform needs.

- ``NetworkPolicies``: the app namespace;
- ``keda_policy_specs``: KEDA's namespace (the ``Keda`` component creates them);
- ``monitoring_policy_specs``: the monitoring namespace (the ``Monitoring`` component creates them).

The API server cannot be selected by a NetworkPolicy (it is not a pod of the cluster: a
static host-network pod on kind, Azure's control plane behind konnectivity on AKS, at an
address not known offline), so ``api_server_egress`` opens TCP 443 and 6443 to any IPv4
address except the link-local range (the instance metadata endpoint 169.254.169.254 among
it); docs/network.md explains the compromise.
"""

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
#: Every IPv4 address, and the link-local range no pod of ours may reach: the instance
#: metadata endpoint (169.254.169.254: Azure IMDS, the node's managed identity tokens) and
#: the rest of 169.254.0.0/16.
ANY_IPV4 = "0.0.0.0/0"
LINK_LOCAL = "169.254.0.0/16"
#: RFC 1918: the VNet, its private endpoints and the cluster's own ranges live here.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
METADATA_ENDPOINT = "169.254.169.254"
#: Where the API server listens: 443 (the ``kubernetes`` Service, AKS) and 6443 (kind's
#: control-plane node, what the Service's endpoint is there).
API_SERVER_PORTS = (443, 6443)
#: The kubelet's port on every node (Prometheus scrapes /metrics, /metrics/cadvisor and
#: /metrics/probes there).
KUBELET_PORT = 10250
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
    token_clients: Sequence[str] = ()
    """``app.kubernetes.io/name`` of the pods that fetch Entra tokens (``REDIS_SIGN_IN=entra``):
    they reach Entra ID (login.microsoftonline.com) on TCP 443, any address but link-local."""

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

        self._policy("default-deny", default_deny())
        self._policy("allow-dns", dns_egress())
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
        if args.token_clients:
            # Entra ID has no fixed addresses: HTTPS to any public address, for these pods only;
            # not the metadata endpoint (the node's identity is not theirs), not the private
            # ranges (the VNet, the private endpoints, the cluster).
            self._policy("entra-token-egress", {
                "podSelector": {"matchExpressions": [
                    {"key": NAME_LABEL, "operator": "In", "values": list(args.token_clients)}]},
                "policyTypes": ["Egress"],
                "egress": [{"to": [anywhere_but_link_local(*PRIVATE_RANGES)], "ports": [_tcp(443)]}],
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


# -- shared rules ---------------------------------------------------------------------------
def default_deny() -> dict[str, Any]:
    """Every pod of the namespace isolated both ways; each flow is then allowed by name."""
    return {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


KUBE_DNS_PEER = {"namespaceSelector": {"matchLabels": {NS_LABEL: "kube-system"}},
                 "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}


def dns_egress() -> dict[str, Any]:
    """Every pod of the namespace to kube-dns (CoreDNS), UDP and TCP 53."""
    return {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [KUBE_DNS_PEER], "ports": [{"protocol": "UDP", "port": 53}, _tcp(53)]}],
    }


def _tcp(port: int) -> dict[str, Any]:
    return {"protocol": "TCP", "port": port}


def anywhere_but_link_local(*also: str) -> dict[str, Any]:
    """An ``ipBlock`` peer: any IPv4 address except 169.254.0.0/16 (the metadata endpoint) and
    the ranges in ``also``."""
    return {"ipBlock": {"cidr": ANY_IPV4, "except": [LINK_LOCAL, *also]}}


def api_server_egress() -> dict[str, Any]:
    """Every pod of the namespace to the API server: TCP 443 and 6443 to any address but the
    link-local range. A NetworkPolicy cannot name the API server, and its address is not known
    offline (kind: the control-plane container's; AKS: a public address behind
    ``apiServerAuthorizedIpRanges``, or a private one with ``apiServerAccess: private``), so
    these two ports stay open to the internet: docs/network.md#the-api-server-compromise."""
    return {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [{"to": [anywhere_but_link_local()], "ports": [_tcp(p) for p in API_SERVER_PORTS]}],
    }


def from_api_server(pods: Mapping[str, str], ports: Sequence[int]) -> dict[str, Any]:
    """Ingress the API server makes (webhooks, an aggregated API) to ``pods`` on ``ports``.
    Its calls come from outside the pod network (kind: the control-plane node's address; AKS:
    the control plane, through the konnectivity agents of kube-system), so the peers are any
    address but the link-local range and the pods of kube-system, on these ports only."""
    return {
        "podSelector": {"matchLabels": dict(pods)},
        "policyTypes": ["Ingress"],
        "ingress": [{
            "from": [anywhere_but_link_local(), {"namespaceSelector": {"matchLabels": {NS_LABEL: "kube-system"}}}],
            "ports": [_tcp(p) for p in ports],
        }],
    }


def redis_peers(endpoint: RedisEndpoint) -> list[dict[str, Any]]:
    """Where Redis is, seen from another namespace: the in-cluster Redis pods (their labels in
    their namespace), or the private endpoint's subnet (``endpoint.egress_cidrs``)."""
    if endpoint.pod_labels is not None:
        if endpoint.namespace is None:
            raise ValueError("RedisEndpoint: an in-cluster Redis needs its namespace")
        return [{"namespaceSelector": {"matchLabels": {NS_LABEL: endpoint.namespace}},
                 "podSelector": {"matchLabels": dict(endpoint.pod_labels)}}]
    if not endpoint.egress_cidrs:
        raise ValueError("RedisEndpoint: an out-of-cluster Redis needs egress_cidrs")
    return [{"ipBlock": {"cidr": c}} for c in endpoint.egress_cidrs]


def _in_namespace(ns: pulumi.Input[str], pods: Mapping[str, str] | None = None) -> dict[str, Any]:
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NS_LABEL: ns}}}
    if pods:
        peer["podSelector"] = {"matchLabels": dict(pods)}
    return peer


# -- KEDA's namespace -----------------------------------------------------------------------
#: The KEDA 2.20.2 chart's pods (label ``app``) and the ports the platform uses
#: (tests/infra/test_flows.py checks them against the chart's render).
KEDA_OPERATOR = {"app": "keda-operator"}
KEDA_METRICS_APISERVER = {"app": "keda-operator-metrics-apiserver"}
KEDA_WEBHOOKS = {"app": "keda-admission-webhooks"}
KEDA_METRICS_APISERVER_PORT = 6443
KEDA_WEBHOOKS_PORT = 9443
KEDA_GRPC_PORT = 9666


def keda_policy_specs(*, endpoint: RedisEndpoint, scraper_namespace: pulumi.Input[str] | None,
                      operator_metrics_port: int) -> dict[str, dict[str, Any]]:
    """KEDA's namespace: default deny; DNS and the API server for its three pods; the
    operator to Redis (the same place the app's clients reach) and, with monitoring on, from
    Prometheus on its metrics port; the metrics apiserver to the operator (gRPC); the API
    server to the metrics apiserver and the admission webhooks."""
    specs = {
        "default-deny": default_deny(),
        "allow-dns": dns_egress(),
        "api-server-egress": api_server_egress(),
        "operator-redis-egress": {
            "podSelector": {"matchLabels": KEDA_OPERATOR},
            "policyTypes": ["Egress"],
            "egress": [{"to": redis_peers(endpoint), "ports": [_tcp(endpoint.port)]}],
        },
        "metrics-apiserver-to-operator": {
            "podSelector": {"matchLabels": KEDA_METRICS_APISERVER},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": KEDA_OPERATOR}}], "ports": [_tcp(KEDA_GRPC_PORT)]}],
        },
        "operator-grpc-ingress": {
            "podSelector": {"matchLabels": KEDA_OPERATOR},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": KEDA_METRICS_APISERVER}}],
                         "ports": [_tcp(KEDA_GRPC_PORT)]}],
        },
        "metrics-apiserver-ingress": from_api_server(KEDA_METRICS_APISERVER, [KEDA_METRICS_APISERVER_PORT]),
        "webhooks-ingress": from_api_server(KEDA_WEBHOOKS, [KEDA_WEBHOOKS_PORT]),
    }
    if scraper_namespace is not None:
        specs["prometheus-ingress"] = {
            "podSelector": {"matchLabels": KEDA_OPERATOR},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [_in_namespace(scraper_namespace, PROMETHEUS_PODS)],
                         "ports": [_tcp(operator_metrics_port)]}],
        }
    return specs


# -- the monitoring namespace ---------------------------------------------------------------
#: The pods the Prometheus Operator creates for the chart's Prometheus (one label of theirs).
PROMETHEUS_PODS = {NAME_LABEL: "prometheus"}
#: kube-prometheus-stack 88.5.3's operator pod (its admission webhook and its metrics, 10250).
PROMETHEUS_OPERATOR = {"app": "kube-prometheus-stack-operator"}
PROMETHEUS_OPERATOR_PORT = 10250
#: Ports the monitoring namespace's pods serve one another: Grafana 3000, the config
#: reloaders and kube-state-metrics 8080, Prometheus 9090, Alertmanager 9093 (+ its mesh,
#: 9094 TCP and UDP), the operator 10250 (scraped). tests/infra/test_flows.py checks every
#: target the chart's monitors scrape in the namespace is among them.
MONITORING_INTERNAL_PORTS = ((3000, "TCP"), (8080, "TCP"), (9090, "TCP"), (9093, "TCP"), (9094, "TCP"),
                             (9094, "UDP"), (PROMETHEUS_OPERATOR_PORT, "TCP"))
#: CoreDNS's metrics port (the chart's coredns ServiceMonitor, in kube-system).
COREDNS_METRICS_PORT = 9153


def monitoring_policy_specs(*, app_namespace: pulumi.Input[str], app_metrics_ports: Sequence[int],
                            keda_namespace: pulumi.Input[str], keda_metrics_port: int) -> dict[str, dict[str, Any]]:
    """The monitoring namespace: default deny; DNS and the API server for every pod (the
    operator, Prometheus's service discovery and the apiserver target, Grafana's sidecars,
    kube-state-metrics, the admission Jobs); its pods to one another on the ports they serve;
    Prometheus to what it scrapes elsewhere (the app's metrics ports, KEDA's operator, CoreDNS,
    the kubelets); the API server to the operator's admission webhook. Nothing else leaves."""
    ports = [{"protocol": proto, "port": port} for port, proto in MONITORING_INTERNAL_PORTS]
    return {
        "default-deny": default_deny(),
        "allow-dns": dns_egress(),
        "api-server-egress": api_server_egress(),
        "within-namespace": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}], "ports": ports}],
            "egress": [{"to": [{"podSelector": {}}], "ports": ports}],
        },
        "prometheus-scrape-egress": {
            "podSelector": {"matchLabels": PROMETHEUS_PODS},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [_in_namespace(app_namespace)], "ports": [_tcp(p) for p in sorted(set(app_metrics_ports))]},
                {"to": [_in_namespace(keda_namespace, KEDA_OPERATOR)], "ports": [_tcp(keda_metrics_port)]},
                {"to": [KUBE_DNS_PEER], "ports": [_tcp(COREDNS_METRICS_PORT)]},
                # the kubelets, on the nodes' addresses (not known offline on either stack)
                {"to": [anywhere_but_link_local()], "ports": [_tcp(KUBELET_PORT)]},
            ],
        },
        "operator-webhook-ingress": from_api_server(PROMETHEUS_OPERATOR, [PROMETHEUS_OPERATOR_PORT]),
    }


def create_policies(name: str, namespace: pulumi.Input[str], specs: Mapping[str, dict[str, Any]],
                    parent: pulumi.Resource) -> list[k8s.networking.v1.NetworkPolicy]:
    """One NetworkPolicy per spec, named by its key, in ``namespace``, under ``parent``."""
    return [
        k8s.networking.v1.NetworkPolicy(
            f"{name}-netpol-{suffix}",
            metadata={"name": suffix, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": kx.PART_OF}},
            spec=spec,
            opts=ResourceOptions(parent=parent),
        )
        for suffix, spec in specs.items()
    ]
