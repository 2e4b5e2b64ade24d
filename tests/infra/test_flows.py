"""The whole cluster's traffic, computed by network-config-analyzer over our
NetworkPolicies and every workload of the cluster (tests/infra/validation/flows.py), for
every variant, monitoring on and off. Each flow the platform needs must be allowed, and
each listed intrusion denied; a failure names the flow."""

from __future__ import annotations

import copy
import functools
import ipaddress

import pytest

from tests.infra.validation import flows, operator_pods
from tests.infra.validation import manifests as m
from tests.infra.validation.render import NETWORK_VARIANT_IDS, rendered

NS = "platform"


@functools.cache
def _analysed(variant_id: str) -> flows.Connectivity:
    r = rendered(variant_id)
    objects = r.cluster_objects + operator_pods.operator_workloads(r.chart_objects)
    return flows.connectivity(objects, [flows.stranger(NS)])


def _redis(r) -> tuple[str, int]:
    if r.variant.stack == "local":
        return f"{NS}/redis", 6379
    port = 6380 if r.variant.setting("azureRedis") == "classic" else 10000
    return "endpoint", port


def flow_table(r) -> tuple[list[tuple], list[tuple]]:
    """(must allow, must deny): ``(description, src, dst, protocol, port)``."""
    mode = r.variant.setting("workerMode")
    monitoring = r.release("kube-prometheus-stack") is not None
    clients = ["worker", "producer", "cache-api"] + (["worker-sweeper"] if mode == "job" else []) + (
        ["redis-exporter"] if monitoring else [])
    redis, port = _redis(r)
    allow, deny = [], []
    if redis != "endpoint":
        allow += [(f"{c} -> Redis", f"{NS}/{c}", redis, "TCP", port) for c in clients]
        allow.append(("KEDA operator -> Redis", "keda/keda-operator", redis, "TCP", port))
        deny += [("a stranger pod in the app namespace -> Redis", f"{NS}/stranger", redis, "TCP", port),
                 ("another namespace -> Redis", "elsewhere/somebody", redis, "TCP", port),
                 ("outside -> Redis", flows.OUTSIDE, redis, "TCP", port),
                 ("worker -> Redis on another port", f"{NS}/worker", redis, "TCP", 6380)]
    allow += [(f"{c} -> DNS {proto}", f"{NS}/{c}", "kube-system/coredns", proto, 53) for c in clients for proto in ("UDP", "TCP")]
    if r.variant.setting("cacheApiCallers") == "cluster":
        allow.append(("any pod -> cache API", "elsewhere/somebody", f"{NS}/cache-api", "TCP", 8000))
    else:
        deny += [("an unlabelled pod -> cache API", "elsewhere/somebody", f"{NS}/cache-api", "TCP", 8000),
                 ("an unlabelled pod in the app namespace -> cache API", f"{NS}/stranger", f"{NS}/cache-api", "TCP", 8000)]
    allow += [("a labelled caller -> cache API", "elsewhere/caller", f"{NS}/cache-api", "TCP", 8000),
              ("API server -> KEDA metrics server", "kube-system/kube-apiserver", "keda/keda-operator-metrics-apiserver", "TCP", 6443),
              ("API server -> KEDA admission webhooks", "kube-system/kube-apiserver", "keda/keda-admission-webhooks", "TCP", 9443),
              ("KEDA metrics server -> KEDA operator (gRPC)", "keda/keda-operator-metrics-apiserver", "keda/keda-operator", "TCP", 9666)]
    deny += [("outside -> worker", "elsewhere/somebody", f"{NS}/worker", "TCP", 9808),
             ("outside -> cache API on another port", "elsewhere/somebody", f"{NS}/cache-api", "TCP", 9000),
             ("worker -> the internet", f"{NS}/worker", flows.OUTSIDE, "TCP", 443)]
    prom = "monitoring/prometheus-monitoring-prometheus"
    if monitoring:
        allow += [("Prometheus -> worker metrics", prom, f"{NS}/worker", "TCP", 9808),
                  ("Prometheus -> producer metrics", prom, f"{NS}/producer", "TCP", 9809),
                  ("Prometheus -> redis-exporter", prom, f"{NS}/redis-exporter", "TCP", 9121),
                  ("Prometheus -> cache API /metrics", prom, f"{NS}/cache-api", "TCP", 8000),
                  ("Prometheus -> KEDA operator metrics", prom, "keda/keda-operator", "TCP", 8080),
                  ("Prometheus -> kube-state-metrics", prom, "monitoring/monitoring-kube-state-metrics", "TCP", 8080),
                  ("Prometheus -> CoreDNS metrics", prom, "kube-system/coredns", "TCP", 9153),
                  ("Grafana -> Prometheus", "monitoring/monitoring-grafana", prom, "TCP", 9090),
                  ("Prometheus -> Alertmanager", prom, "monitoring/alertmanager-monitoring-alertmanager", "TCP", 9093),
                  ("API server -> operator admission webhook", "kube-system/kube-apiserver", "monitoring/monitoring-operator", "TCP", 10250)]
        deny += [("Prometheus -> Redis", prom, redis, "TCP", port)] if redis != "endpoint" else []
        deny += [("another namespace -> worker metrics", "elsewhere/somebody", f"{NS}/worker", "TCP", 9808)]
    return allow, deny


def flow_problems(conn: flows.Connectivity, allow: list[tuple], deny: list[tuple], endpoint_range: str | None = None) -> list[str]:
    def resolve(x: str) -> str:
        return endpoint_range if x == "endpoint" and endpoint_range else x

    problems = [f"needed flow denied: {d} ({s} -> {resolve(t)} {p}/{port})"
                for d, s, t, p, port in allow if not conn.allows(s, resolve(t), p, port)]
    problems += [f"flow allowed that must be denied: {d} ({s} -> {resolve(t)} {p}/{port})"
                 for d, s, t, p, port in deny if conn.allows(s, resolve(t), p, port)]
    return problems


def _endpoint_range(conn: flows.Connectivity, r) -> str | None:
    if r.variant.stack == "local":
        return None
    cidr = ipaddress.ip_network([p for p in m.by_kind(r.objects, "NetworkPolicy") if m.name(p) == "redis-egress"][0]
                                ["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"])
    found = [e for e in conn.endpoints() if "-" in e and e.split("-")[0].count(".") == 3
             and ipaddress.ip_address(e.split("-")[0]) in cidr]
    assert found, f"no endpoint for the Redis subnet {cidr} in {sorted(conn.endpoints())}"
    return found[0]


@pytest.mark.parametrize("variant_id", NETWORK_VARIANT_IDS)
def test_the_flow_table_holds(variant_id):
    r = rendered(variant_id)
    conn = _analysed(variant_id)
    allow, deny = flow_table(r)
    redis_range = _endpoint_range(conn, r)
    if redis_range:  # aks: the clients reach the private endpoint subnet, a stranger does not
        _, port = _redis(r)
        clients = [d[1] for d in allow if d[0].endswith("-> DNS UDP")]
        allow = allow + [(f"{c.split('/')[1]} -> Azure Redis", c, "endpoint", "TCP", port) for c in clients]
        deny = deny + [("a stranger pod in the app namespace -> Azure Redis", f"{NS}/stranger", "endpoint", "TCP", port)]
    assert flow_problems(conn, allow, deny, redis_range) == []


def test_monitoring_off_leaves_no_metrics_flow():
    conn = _analysed("local-deployment-nomon")
    assert not conn.allows("elsewhere/somebody", f"{NS}/worker", "TCP", 9808)
    assert not any(src.startswith("monitoring/") for src, _ in conn.pairs)


def test_a_broken_policy_fails_naming_the_flow():
    """Drop the KEDA namespace from redis-ingress and the worker's metrics policy: NCA's map
    changes, and the table names both flows."""
    r = rendered("local-deployment")
    objects = copy.deepcopy(r.cluster_objects + operator_pods.operator_workloads(r.chart_objects))
    for p in m.by_kind(objects, "NetworkPolicy"):
        if m.name(p) == "redis-ingress":
            p["spec"]["ingress"][0]["from"] = p["spec"]["ingress"][0]["from"][:1]
    objects = [o for o in objects if not (o.get("kind") == "NetworkPolicy" and m.name(o) == "worker-metrics-ingress")]
    conn = flows.connectivity(objects, [flows.stranger(NS)])
    allow, deny = flow_table(r)
    problems = flow_problems(conn, allow, deny)
    assert "needed flow denied: KEDA operator -> Redis (keda/keda-operator -> platform/redis TCP/6379)" in problems
    assert any(p.startswith("needed flow denied: Prometheus -> worker metrics") for p in problems), problems


@pytest.mark.parametrize("text, protocol, port, expected", [
    ("All connections", "UDP", 1, True),
    ("{protocols:TCP,dst_ports:6379}", "TCP", 6379, True),
    ("{protocols:TCP,dst_ports:6379}", "UDP", 6379, False),
    ("{protocols:TCP, UDP,dst_ports:53}", "UDP", 53, True),
    ("{protocols:TCP,dst_ports:8000-8010,9000}", "TCP", 9000, True),
    ("All but {protocols:TCP,dst_ports:22}", "TCP", 22, False),
    ("All but {protocols:TCP,dst_ports:22}", "TCP", 80, True),
])
def test_nca_connection_strings_parse(text, protocol, port, expected):
    conn = flows.Connectivity({("a", "b"): text})
    assert conn.allows("a", "b", protocol, port) is expected
    assert not conn.allows("b", "a", protocol, port)
