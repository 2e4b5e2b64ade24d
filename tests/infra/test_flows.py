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
from tests.infra.validation.netpol import Cluster, Endpoint, selector_matches
from tests.infra.validation.render import NETWORK_VARIANT_IDS, rendered

NS = "platform"


@functools.cache
def _analysed(variant_id: str) -> flows.Connectivity:
    r = rendered(variant_id)
    objects = r.cluster_objects + operator_pods.operator_workloads(r.chart_objects)
    return flows.connectivity(objects, [flows.stranger(NS)])


def _redis(r) -> tuple[str, int]:
    """Redis as the flow table names it: the in-cluster pods, or an address in the private
    endpoint's subnet (aks)."""
    if r.variant.stack == "local":
        return f"{NS}/redis", 6379
    port = 6380 if r.variant.setting("azureRedis") == "classic" else 10000
    (egress,) = [p for p in m.by_kind(r.objects, "NetworkPolicy") if m.name(p) == "redis-egress"]
    subnet = ipaddress.ip_network(egress["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"])
    return str(next(subnet.hosts()) + 3), port


#: Where the API server and the kubelets are, per stack: kind's control-plane and worker
#: containers on its Docker network (6443); on AKS the API server's public address
#: (apiServerAccess: authorized) or its private endpoint in the node subnet (private), on 443,
#: and the nodes in the node subnet. None of these is known offline: the policies allow the
#: ports to any address but the link-local range, and the table checks addresses of each kind.
API_SERVERS = {"local": [("172.18.0.2", 6443)], "aks": [("52.160.10.20", 443), ("10.42.0.4", 443)]}
NODES = {"local": ["172.18.0.2", "172.18.0.3"], "aks": ["10.42.0.5"]}
KEDA_PODS = ["keda/keda-operator", "keda/keda-operator-metrics-apiserver", "keda/keda-admission-webhooks"]
MONITORING_PODS = ["monitoring/prometheus-monitoring-prometheus", "monitoring/alertmanager-monitoring-alertmanager",
                   "monitoring/monitoring-grafana", "monitoring/monitoring-kube-state-metrics",
                   "monitoring/monitoring-operator", "monitoring/monitoring-admission-create",
                   "monitoring/monitoring-admission-patch"]
#: Ports no pod of KEDA or monitoring may open to the internet or the metadata endpoint (the
#: API server's two are the one documented exception, to the internet only).
EXFIL_PORTS = [("TCP", 80), ("TCP", 8080), ("TCP", 22), ("TCP", 587), ("UDP", 443), ("TCP", 10250)]


def _fenced(pods: list[str], api_servers: list[tuple[str, int]], monitoring: bool) -> tuple[list[tuple], list[tuple]]:
    """DNS and the API server allowed, the rest of the internet and the metadata endpoint denied,
    for each of ``pods``."""
    allow, deny = [], []
    for pod in pods:
        who = pod.split("/")[1]
        allow += [(f"{who} -> DNS {proto}", pod, "kube-system/coredns", proto, 53) for proto in ("UDP", "TCP")]
        allow += [(f"{who} -> API server {ip}:{port}", pod, ip, "TCP", port) for ip, port in api_servers]
        # the documented compromise: the API server's ports are open to any address but link-local
        allow += [(f"{who} -> the internet on the API server's port {port}", pod, flows.INTERNET, "TCP", port)
                  for port in (443, 6443)]
        deny += [(f"{who} -> the metadata endpoint {proto}/{port}", pod, flows.METADATA, proto, port)
                 for proto, port in [("TCP", 443), ("TCP", 6443), ("TCP", 80), ("UDP", 53)]]
        deny += [(f"{who} -> the internet {proto}/{port}", pod, flows.INTERNET, proto, port)
                 for proto, port in EXFIL_PORTS if not (who.startswith("prometheus") and port == 10250)]
        deny += [(f"{who} -> the app namespace", pod, f"{NS}/worker", "TCP", 9808)] if not (
            monitoring and who.startswith("prometheus")) else []
    return allow, deny


def flow_table(r) -> tuple[list[tuple], list[tuple]]:
    """(must allow, must deny): ``(description, src, dst, protocol, port)``; src and dst are
    ``namespace/workload`` or an address outside the cluster."""
    mode = r.variant.setting("workerMode")
    monitoring = r.release("kube-prometheus-stack") is not None
    stack = r.variant.stack
    clients = ["worker", "producer", "cache-api"] + (["worker-sweeper"] if mode == "job" else []) + (
        ["redis-exporter"] if monitoring else [])
    redis, port = _redis(r)
    allow, deny = [], []
    allow += [(f"{c} -> Redis", f"{NS}/{c}", redis, "TCP", port) for c in clients]
    allow.append(("KEDA operator -> Redis", "keda/keda-operator", redis, "TCP", port))
    deny += [("a stranger pod in the app namespace -> Redis", f"{NS}/stranger", redis, "TCP", port),
             ("worker -> Redis on another port", f"{NS}/worker", redis, "TCP", port + 1),
             ("KEDA operator -> Redis on another port", "keda/keda-operator", redis, "TCP", port + 1),
             ("KEDA metrics server -> Redis", "keda/keda-operator-metrics-apiserver", redis, "TCP", port),
             ("KEDA webhooks -> Redis", "keda/keda-admission-webhooks", redis, "TCP", port)]
    if stack == "local":  # Azure Redis is outside the cluster: a namespace without policies reaches it
        deny += [("outside -> Redis", flows.INTERNET, redis, "TCP", port),
                 ("another namespace -> Redis", "elsewhere/somebody", redis, "TCP", port)]
    else:
        deny.append(("worker -> a public address on the Redis port", f"{NS}/worker", flows.INTERNET, "TCP", port))
    if monitoring:
        deny.append(("Prometheus -> Redis", "monitoring/prometheus-monitoring-prometheus", redis, "TCP", port))
    allow += [(f"{c} -> DNS {proto}", f"{NS}/{c}", "kube-system/coredns", proto, 53) for c in clients for proto in ("UDP", "TCP")]
    if r.variant.setting("cacheApiCallers") == "cluster":
        allow.append(("any pod -> cache API", "elsewhere/somebody", f"{NS}/cache-api", "TCP", 8000))
    else:
        deny += [("an unlabelled pod -> cache API", "elsewhere/somebody", f"{NS}/cache-api", "TCP", 8000),
                 ("an unlabelled pod in the app namespace -> cache API", f"{NS}/stranger", f"{NS}/cache-api", "TCP", 8000)]
    api_servers = API_SERVERS[stack]
    allow += [("a labelled caller -> cache API", "elsewhere/caller", f"{NS}/cache-api", "TCP", 8000),
              ("KEDA metrics server -> KEDA operator (gRPC)", "keda/keda-operator-metrics-apiserver", "keda/keda-operator", "TCP", 9666)]
    # The API server calls KEDA's metrics server (external.metrics.k8s.io) and webhooks: from
    # kube-system (AKS's konnectivity agents; our stand-in) and from outside the pod network.
    for src in ("kube-system/kube-apiserver", api_servers[0][0]):
        allow += [(f"API server ({src}) -> KEDA metrics server", src, "keda/keda-operator-metrics-apiserver", "TCP", 6443),
                  (f"API server ({src}) -> KEDA admission webhooks", src, "keda/keda-admission-webhooks", "TCP", 9443)]
    deny += [("outside -> worker", "elsewhere/somebody", f"{NS}/worker", "TCP", 9808),
             ("outside -> cache API on another port", "elsewhere/somebody", f"{NS}/cache-api", "TCP", 9000),
             ("worker -> the internet on port 80", f"{NS}/worker", flows.INTERNET, "TCP", 80),
             ("worker -> the metadata endpoint", f"{NS}/worker", flows.METADATA, "TCP", 80),
             ("worker -> the metadata endpoint's HTTPS", f"{NS}/worker", flows.METADATA, "TCP", 443),
             ("another namespace -> KEDA operator (gRPC)", "elsewhere/somebody", "keda/keda-operator", "TCP", 9666),
             ("another namespace -> KEDA operator metrics", "elsewhere/somebody", "keda/keda-operator", "TCP", 8080),
             ("another namespace -> KEDA metrics server on another port", "elsewhere/somebody",
              "keda/keda-operator-metrics-apiserver", "TCP", 8080),
             ("a stranger pod in the app namespace -> KEDA operator", f"{NS}/stranger", "keda/keda-operator", "TCP", 9666),
             ("the metadata endpoint's range -> KEDA webhooks", flows.METADATA, "keda/keda-admission-webhooks", "TCP", 9443),
             ("KEDA webhooks -> KEDA operator", "keda/keda-admission-webhooks", "keda/keda-operator", "TCP", 9666)]
    # Keyless apps (Azure Managed Redis, redisEntraAuth on) fetch Entra tokens over HTTPS;
    # every other app pod, and every pod on the other stacks, reaches no internet address.
    keyless = stack == "aks" and r.variant.setting("azureRedis") != "classic"
    token_apps = [c for c in clients if c != "redis-exporter"] if keyless else []
    allow += [(f"{c} -> Entra ID (HTTPS)", f"{NS}/{c}", flows.INTERNET, "TCP", 443) for c in token_apps]
    deny += [(f"{c} -> the internet", f"{NS}/{c}", flows.INTERNET, "TCP", 443) for c in clients if c not in token_apps]
    fenced_allow, fenced_deny = _fenced(KEDA_PODS + (MONITORING_PODS if monitoring else []), api_servers, monitoring)
    allow += fenced_allow
    deny += fenced_deny
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
                  ("Prometheus -> Grafana metrics", prom, "monitoring/monitoring-grafana", "TCP", 3000),
                  ("Prometheus -> the operator's metrics", prom, "monitoring/monitoring-operator", "TCP", 10250)]
        allow += [(f"Prometheus -> kubelet {ip}", prom, ip, "TCP", 10250) for ip in NODES[stack]]
        for src in ("kube-system/kube-apiserver", api_servers[0][0]):
            allow.append((f"API server ({src}) -> operator admission webhook", src, "monitoring/monitoring-operator", "TCP", 10250))
        deny += [("another namespace -> worker metrics", "elsewhere/somebody", f"{NS}/worker", "TCP", 9808),
                 ("another namespace -> Prometheus", "elsewhere/somebody", prom, "TCP", 9090),
                 ("another namespace -> Grafana", "elsewhere/somebody", "monitoring/monitoring-grafana", "TCP", 3000),
                 ("a stranger pod in the app namespace -> Alertmanager", f"{NS}/stranger",
                  "monitoring/alertmanager-monitoring-alertmanager", "TCP", 9093),
                 ("Grafana -> kubelet", "monitoring/monitoring-grafana", NODES[stack][0], "TCP", 10250),
                 ("Grafana -> KEDA operator", "monitoring/monitoring-grafana", "keda/keda-operator", "TCP", 8080),
                 ("Prometheus -> worker on another port", prom, f"{NS}/worker", "TCP", 6379),
                 ("Prometheus -> KEDA's gRPC", prom, "keda/keda-operator", "TCP", 9666),
                 ("Prometheus -> the metadata endpoint on the kubelet's port", prom, flows.METADATA, "TCP", 10250),
                 ("Grafana -> Prometheus on another port", "monitoring/monitoring-grafana", prom, "TCP", 9091)]
    else:
        deny.append(("another namespace -> KEDA operator metrics", "elsewhere/somebody", "keda/keda-operator", "TCP", 8080))
    return allow, deny


def flow_problems(conn: flows.Connectivity, allow: list[tuple], deny: list[tuple]) -> list[str]:
    problems = [f"needed flow denied: {d} ({s} -> {t} {p}/{port})"
                for d, s, t, p, port in allow if not conn.allows(s, t, p, port)]
    problems += [f"flow allowed that must be denied: {d} ({s} -> {t} {p}/{port})"
                 for d, s, t, p, port in deny if conn.allows(s, t, p, port)]
    return problems


@pytest.mark.parametrize("variant_id", NETWORK_VARIANT_IDS)
def test_the_flow_table_holds(variant_id):
    r = rendered(variant_id)
    allow, deny = flow_table(r)
    assert flow_problems(_analysed(variant_id), allow, deny) == []


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


# -- every namespace of ours starts from default deny ------------------------------------------
def _default_denies(objects: list[dict]) -> set[str]:
    return {m.namespace(p) for p in m.by_kind(objects, "NetworkPolicy")
            if p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")}


@pytest.mark.parametrize("variant_id", NETWORK_VARIANT_IDS)
def test_every_namespace_that_runs_pods_has_a_default_deny(variant_id):
    """Ours and the charts' pods: the app namespace, KEDA's, and monitoring's when it is on; the
    default deny is the stack's own object (the charts render no NetworkPolicy)."""
    r = rendered(variant_id)
    monitoring = r.release("kube-prometheus-stack") is not None
    running = {pt.namespace for pt in m.pod_templates(r.cluster_objects)}
    assert running == {NS, "keda"} | ({"monitoring"} if monitoring else set())
    assert _default_denies(r.objects) == running
    assert not m.by_kind(r.chart_objects, "NetworkPolicy")


# -- every scrape target the monitors name is reachable from Prometheus only ------------------
#: Targets whose Service has no selector (its endpoints are kept by their owner): the API
#: server's ``default/kubernetes`` and the operator's kubelet Service, reached on the nodes.
OWNER_KEPT = {"ServiceMonitor monitoring/monitoring-apiserver": "api-server",
              "ServiceMonitor monitoring/monitoring-kubelet": "kubelet"}


def scrape_targets(r) -> list[tuple[str, str, int]]:
    """``(monitor, namespace/workload, port)`` for every endpoint of every ServiceMonitor and
    PodMonitor, resolved to the pods they select and the port number those pods serve."""
    objects = r.cluster_objects + operator_pods.operator_workloads(r.chart_objects) + flows.STAND_INS
    pods = m.pod_templates(objects)
    services = m.by_kind(objects, "Service")
    stack = r.variant.stack

    def number(pt, port) -> int:
        for _, c in pt.containers():
            for p in c.get("ports") or []:
                if port in (p.get("name"), p.get("containerPort")):
                    return int(p["containerPort"])
        raise AssertionError(f"{pt.where} has no port {port!r}")

    def in_ns(mon, ns) -> bool:
        names = (mon["spec"].get("namespaceSelector") or {}).get("matchNames") or [m.namespace(mon)]
        return ns in names

    out = []
    for mon in objects:
        if mon.get("kind") not in ("ServiceMonitor", "PodMonitor"):
            continue
        ref, spec = m.ref(mon), mon["spec"]
        if ref in OWNER_KEPT:
            if OWNER_KEPT[ref] == "api-server":
                out += [(ref, ip, port) for ip, port in API_SERVERS[stack]]
            else:
                out += [(ref, ip, 10250) for ip in NODES[stack]]
            continue
        if mon["kind"] == "PodMonitor":
            chosen = [(pt, ep["port"]) for pt in pods for ep in spec["podMetricsEndpoints"]
                      if in_ns(mon, pt.namespace) and selector_matches(spec["selector"], pt.labels)]
        else:
            chosen = []
            for svc in services:
                labels = svc["metadata"].get("labels") or {}
                if not (in_ns(mon, m.namespace(svc)) and selector_matches(spec["selector"], labels)):
                    continue
                ports = {p["name"]: p for p in svc["spec"]["ports"]}
                chosen += [(pt, ports[ep["port"]].get("targetPort", ports[ep["port"]]["port"]))
                           for pt in pods for ep in spec["endpoints"]
                           if pt.namespace == m.namespace(svc)
                           and selector_matches({"matchLabels": svc["spec"]["selector"]}, pt.labels)]
        assert chosen, f"{ref} selects nothing"
        out += [(ref, f"{pt.namespace}/{m.name(pt.owner)}", number(pt, port)) for pt, port in chosen]
    return out


@pytest.mark.parametrize("variant_id", [v for v in NETWORK_VARIANT_IDS if not v.endswith("-nomon")])
def test_prometheus_reaches_every_target_its_monitors_scrape(variant_id):
    r = rendered(variant_id)
    conn = _analysed(variant_id)
    targets = scrape_targets(r)
    assert {t for _, t, _ in targets} >= {f"{NS}/worker", f"{NS}/redis-exporter", "keda/keda-operator",
                                          "kube-system/coredns", "monitoring/prometheus-monitoring-prometheus"}
    prom = "monitoring/prometheus-monitoring-prometheus"
    assert [f"{mon}: {t} TCP/{port}" for mon, t, port in targets
            if t != prom and not conn.allows(prom, t, "TCP", port)] == []
    # Prometheus scraping itself: NCA lists no pair of a workload with itself, so the policies
    # are asked directly (tests/infra/validation/netpol.py)
    (pod,) = [pt for pt in m.pod_templates(operator_pods.operator_workloads(r.chart_objects))
              if f"{pt.namespace}/{m.name(pt.owner)}" == prom]
    me = Endpoint("prometheus", "monitoring", pod.labels)
    cluster = Cluster(m.by_kind(r.objects, "NetworkPolicy"))
    self_ports = sorted({port for _, t, port in targets if t == prom})
    assert self_ports == [8080, 9090]
    assert all(cluster.allowed(me, me, port) for port in self_ports)
    # ...and no other pod of the cluster reaches the ones in our namespaces
    open_api = r.variant.setting("cacheApiCallers") == "cluster"  # the cache API's port is open to any pod then
    ours = [(t, port) for _, t, port in targets if t.split("/")[0] in (NS, "keda", "monitoring")
            and not (open_api and t == f"{NS}/cache-api")]
    assert [f"{t} TCP/{port}" for t, port in ours if conn.allows("elsewhere/somebody", t, "TCP", port)] == []


# -- a broken KEDA policy fails naming the flow ---------------------------------------------
def _without(objects: list[dict], ns: str, name: str) -> list[dict]:
    return [o for o in objects if not (o.get("kind") == "NetworkPolicy" and m.namespace(o) == ns and m.name(o) == name)]


def test_a_broken_keda_policy_fails_naming_the_flow():
    """KEDA's Redis egress dropped, and its API-server egress opened to the metadata endpoint:
    the table names both."""
    r = rendered("local-deployment")
    objects = copy.deepcopy(r.cluster_objects + operator_pods.operator_workloads(r.chart_objects))
    objects = _without(objects, "keda", "operator-redis-egress")
    for p in m.by_kind(objects, "NetworkPolicy"):
        if m.namespace(p) == "keda" and m.name(p) == "api-server-egress":
            p["spec"]["egress"][0]["to"][0]["ipBlock"].pop("except")
    conn = flows.connectivity(objects, [flows.stranger(NS)])
    allow, deny = flow_table(r)
    problems = flow_problems(conn, allow, deny)
    assert "needed flow denied: KEDA operator -> Redis (keda/keda-operator -> platform/redis TCP/6379)" in problems
    assert ("flow allowed that must be denied: keda-operator -> the metadata endpoint TCP/443 "
            "(keda/keda-operator -> 169.254.169.254 TCP/443)") in problems
    assert all("monitoring/" not in p for p in problems), problems


def test_nca_lines_of_one_pair_and_addresses():
    """NCA prints a pair allowed on TCP and UDP as two lines (both count), and names the outside
    by ranges it splits per pair; an address is looked up in each pair's own ranges."""
    conn = flows.Connectivity({
        ("a", "b"): "{protocols:TCP,dst_ports:3000}" + flows.LINES + "{protocols:UDP,dst_ports:9094}",
        ("a", "0.0.0.0-169.253.255.255,169.255.0.0-255.255.255.255"): "{protocols:TCP,dst_ports:443}",
        ("c", "0.0.0.0-255.255.255.255"): "All connections",
    })
    assert conn.allows("a", "b", "TCP", 3000) and conn.allows("a", "b", "UDP", 9094)
    assert not conn.allows("a", "b", "UDP", 3000)
    assert conn.allows("a", flows.INTERNET, "TCP", 443) and not conn.allows("a", flows.INTERNET, "TCP", 80)
    assert not conn.allows("a", flows.METADATA, "TCP", 443)
    assert conn.allows("c", flows.METADATA, "UDP", 53)
