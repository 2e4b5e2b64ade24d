"""Every object the charts create passes the gates ours pass.

The KEDA and kube-prometheus-stack releases, as ``helm template`` of the vendored charts
renders them with the program's own values (tools/helm_render.py, ``OUT/helm/``):
strict schema of the stack's Kubernetes version, the operator's CRDs for its custom
resources, and Pod Security ``restricted`` for every pod in a restricted namespace
(ours, the charts', and the pods the Prometheus Operator will create from the chart's
CRs). checkov over the chart objects: tests/infra/test_checkov.py.
"""

from __future__ import annotations

import copy
import functools

import pytest

from tests.infra.validation import manifests as m
from tests.infra.validation import operator_pods, pod_security
from tests.infra.validation.k8s_schema import validate_k8s_object
from tests.infra.validation.keda_schema import is_keda
from tests.infra.validation.prom_schema import is_monitoring, validate_monitoring_object
from tests.infra.validation.render import BY_ID, VARIANT_IDS, ChartRelease, rendered
from tools import helm_render


@pytest.fixture(params=VARIANT_IDS)
def r(request):
    return rendered(request.param)


_RELEASES: dict[tuple, ChartRelease] = {}


@functools.cache
def _schema_problems(release_key: tuple) -> tuple[str, ...]:
    """Once per distinct render (the same release, version and values give the same objects)."""
    rel = _RELEASES[release_key]
    problems = []
    for obj in rel.objects:
        if is_monitoring(obj):
            problems += validate_monitoring_object(obj, rel.kube_version)
        elif is_keda(obj):
            problems.append(f"{m.ref(obj)}: a keda.sh object in the KEDA chart (validate it)")
        else:
            problems += validate_k8s_object(obj, rel.kube_version)
    return tuple(problems)


def test_both_releases_are_rendered_for_the_stacks_kubernetes(r):
    assert {rel.chart for rel in r.charts.values()} == {"keda", "kube-prometheus-stack"}
    for rel in r.charts.values():
        assert rel.kube_version == r.k8s_version and rel.objects
        assert rel.namespace == {"keda": "keda", "kube-prometheus-stack": "monitoring"}[rel.chart]


def test_chart_objects_validate_strict_against_the_stacks_kubernetes(r):
    """Built-in kinds (CRDs, RBAC, webhooks, Deployments, Jobs...) strict; the operator's
    kinds (Prometheus, Alertmanager, ServiceMonitors) against its tightened CRDs."""
    for rel in r.charts.values():
        _RELEASES.setdefault(rel.key, rel)
    problems = [p for rel in r.charts.values() for p in _schema_problems(rel.key)]
    assert not problems, "\n".join(problems)


def _pods(r) -> list[m.PodTemplate]:
    """Every pod template of the cluster: ours, the charts', the operator's StatefulSets."""
    return m.pod_templates(r.cluster_objects + operator_pods.operator_workloads(r.chart_objects))


def test_every_pod_in_a_restricted_namespace_is_admitted(r):
    namespaces = pod_security.restricted_namespaces(r.objects)
    assert {"platform", "keda", "monitoring"} <= namespaces
    pods = [pt for pt in _pods(r) if pt.namespace in namespaces]
    owners = {m.ref(pt.owner) for pt in pods}
    assert {"Deployment keda/keda-operator", "Job monitoring/monitoring-admission-create",
            "StatefulSet monitoring/prometheus-monitoring-prometheus",
            "StatefulSet monitoring/alertmanager-monitoring-alertmanager"} <= owners, sorted(owners)
    problems = pod_security.check_templates(pods, namespaces)
    assert not problems, "\n".join(problems)


def test_no_chart_pod_lands_outside_the_restricted_namespaces(r):
    """The charts also create objects in kube-system (kube-prometheus-stack's CoreDNS
    Service) and the app namespace (KEDA's RoleBinding), but no pod."""
    namespaces = pod_security.restricted_namespaces(r.objects)
    outside = [pt.where for pt in m.pod_templates(r.chart_objects) if pt.namespace not in namespaces]
    assert not outside, outside


# --- tests of the tests -----------------------------------------------------------------
def _monitoring_release(variant_id: str = "local-deployment") -> ChartRelease:
    return rendered(variant_id).release("kube-prometheus-stack")


def _retemplate(rel: ChartRelease, values: dict) -> list[dict]:
    release = helm_render.Release(rel.name, rel.namespace, rel.chart, rel.version, values, "test")
    return helm_render.template(release, rel.kube_version).objects


def test_restricted_refuses_node_exporter_when_the_values_turn_it_on():
    """A real render with one value changed: node-exporter needs the host, and the gate says so."""
    rel = _monitoring_release()
    values = copy.deepcopy(rel.values)
    values["nodeExporter"]["enabled"] = True
    objects = _retemplate(rel, values)
    problems = pod_security.check_templates(m.pod_templates(objects), {"monitoring"})
    node_exporter = [p for p in problems if "node-exporter" in p]
    for control in ("hostNamespaces", "hostPathVolumes", "volumeTypes"):
        assert any(f"[{control}]" in p for p in node_exporter), (control, problems)


def test_restricted_refuses_a_prometheus_without_its_pod_security_context():
    prom = next(o for o in _monitoring_release().objects if o["kind"] == "Prometheus")
    broken = copy.deepcopy(prom)
    broken["spec"]["securityContext"] = {"runAsUser": 0}
    (sts,) = operator_pods.operator_workloads([broken])
    problems = pod_security.check_templates(m.pod_templates([sts]), {"monitoring"})
    assert any("[runAsNonRoot] containers[prometheus]:" in p for p in problems), problems
    assert any("[runAsUser] pod: runAsUser is 0" in p for p in problems), problems
    assert any("[seccomp] containers[config-reloader]:" in p for p in problems), problems
    assert not pod_security.check_templates(m.pod_templates(operator_pods.operator_workloads([prom])), {"monitoring"})


@pytest.mark.parametrize("patch, control", [
    ({"hostNetwork": True}, "hostNamespaces"),
    ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "hostPathVolumes"),
    ({"volumes": [{"name": "n", "nfs": {"server": "x", "path": "/"}}]}, "volumeTypes"),
    ({"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}}}, "seccomp.baseline"),
    ({"securityContext": {"runAsNonRoot": True, "sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}, "sysctls"),
    ({"containers": [{"name": "c", "securityContext": {"privileged": True}}]}, "privileged"),
    ({"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]}}}]}, "capabilities"),
    ({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}]}]}, "hostPorts"),
    ({"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": False}}]}, "runAsNonRoot"),
])
def test_each_restricted_control_fails_a_pod_that_breaks_it(patch, control):
    good = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
        "volumes": [{"name": "t", "emptyDir": {}}],
    }
    assert pod_security.pod_violations(good) == []
    bad = {**good, **patch}
    assert control in {c for c, _ in pod_security.pod_violations(bad)}


def test_schema_gate_fails_a_chart_object_with_a_typo():
    keda = rendered("local-deployment").release("keda")
    dep = copy.deepcopy(next(o for o in keda.objects if o["kind"] == "Deployment"))
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert any("imagePullPolicyy" in p for p in validate_k8s_object(dep, keda.kube_version))
    prom = copy.deepcopy(next(o for o in _monitoring_release().objects if o["kind"] == "Prometheus"))
    prom["spec"]["retension"] = "1d"
    assert any("retension" in p for p in validate_monitoring_object(prom))


# --- KEDA's CRDs: the ones the release installs ----------------------------------------------
def chart_crd_problems(objects: list[dict], crds: list[dict], kube_version: str) -> list[str]:
    """Our keda.sh objects against the CRDs the KEDA chart installs, tightened like the
    kedacore/keda ones (schemas/keda/v2.20.2/): the cluster holds the chart's, and they
    are not the same files (ScaledJob's trigger has no ``metricType`` there, ScaledObject's
    HPA behaviour has bounds)."""
    import jsonschema

    from tests.infra.validation.keda_schema import _object_schema, _registry

    schemas = {}
    for crd in crds:
        for version in crd["spec"]["versions"]:
            schema = _object_schema(crd, version)
            schemas[(schema["properties"]["apiVersion"]["const"], crd["spec"]["names"]["kind"])] = schema
    problems = []
    for obj in objects:
        if not is_keda(obj):
            continue
        schema = schemas.get((obj["apiVersion"], obj["kind"]))
        if schema is None:
            problems.append(f"{m.ref(obj)}: the KEDA chart installs no CRD for {obj['apiVersion']} {obj['kind']}")
            continue
        validator = jsonschema.Draft202012Validator(schema, registry=_registry(kube_version))
        problems += [f"{m.ref(obj)}: {'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]
    return problems


def _chart_crds(r) -> list[dict]:
    return [o for o in r.release("keda").objects if o["kind"] == "CustomResourceDefinition"]


def test_our_keda_objects_fit_the_crds_the_chart_installs(r):
    keda_objects = [o for o in r.objects if is_keda(o)]
    assert {o["kind"] for o in keda_objects} >= {"TriggerAuthentication"}
    assert chart_crd_problems(keda_objects, _chart_crds(r), r.k8s_version) == []


def test_the_chart_crd_check_catches_a_field_the_chart_lacks():
    r = rendered("local-job")
    job = copy.deepcopy(next(o for o in r.objects if o["kind"] == "ScaledJob"))
    job["spec"]["triggers"][0]["metricType"] = "AverageValue"  # in kedacore/keda's CRD, not the chart's
    problems = chart_crd_problems([job], _chart_crds(r), r.k8s_version)
    assert any("metricType" in p for p in problems), problems


# --- cross-checks: our objects against the charts' -------------------------------------------
#: What the chart's monitors select that neither Helm nor we create (stand-ins with their real labels and ports), with the labels and
#: ports their owners give them: the API server's ``default/kubernetes``, and the kubelet
#: Service the Prometheus Operator keeps (its ``--kubelet-service`` flag, as the chart sets it).
EXTERNAL_SERVICES = [
    # CoreDNS, as kind and AKS run it (the chart's kube-system Service monitoring-coredns selects it)
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": "kube-system"},
     "spec": {"template": {"metadata": {"labels": {"k8s-app": "kube-dns"}}, "spec": {"containers": [{"name": "coredns", "ports": [
         {"name": "dns", "containerPort": 53, "protocol": "UDP"}, {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
         {"name": "metrics", "containerPort": 9153, "protocol": "TCP"}]}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default",
     "labels": {"component": "apiserver", "provider": "kubernetes"}}, "spec": {"ports": [{"name": "https", "port": 443}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "monitoring-kubelet", "namespace": "kube-system",
     "labels": {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"}},
     "spec": {"ports": [{"name": "https-metrics", "port": 10250}, {"name": "http-metrics", "port": 10255},
                        {"name": "cadvisor", "port": 4194}]}},
]


def _selects(selector: dict | None, labels: dict) -> bool:
    from tests.infra.validation.netpol import selector_matches

    return selector_matches(selector, labels)


def _container_ports(pt: m.PodTemplate) -> set:
    return {p.get("name") for _, c in pt.containers() for p in c.get("ports") or []} | {
        p.get("containerPort") for _, c in pt.containers() for p in c.get("ports") or []}


def monitor_problems(objects: list[dict]) -> list[str]:
    """Every ServiceMonitor/PodMonitor selects pods (or Services whose pods exist) in the
    namespaces it names, on a port they have."""
    pods = m.pod_templates(objects)
    services = m.by_kind(objects, "Service")
    problems = []
    for mon_obj in objects:
        kind = mon_obj.get("kind")
        if kind not in ("ServiceMonitor", "PodMonitor") or not is_monitoring(mon_obj):
            continue
        spec, where = mon_obj.get("spec") or {}, m.ref(mon_obj)
        ns_sel = spec.get("namespaceSelector") or {}
        allowed = None if ns_sel.get("any") else set(ns_sel.get("matchNames") or [m.namespace(mon_obj)])
        in_ns = lambda ns, allowed=allowed: allowed is None or ns in allowed  # noqa: E731
        if kind == "PodMonitor":
            chosen = [pt for pt in pods if in_ns(pt.namespace) and _selects(spec.get("selector"), pt.labels)]
            if not chosen:
                problems.append(f"{where}: selects no pod in {ns_sel.get('matchNames') or [m.namespace(mon_obj)]}")
            for ep in spec.get("podMetricsEndpoints") or []:
                for pt in chosen:
                    if ep.get("port") not in _container_ports(pt):
                        problems.append(f"{where}: {pt.where} has no port {ep.get('port')!r}")
            continue
        chosen_svcs = [s for s in services if in_ns(m.namespace(s))
                       and _selects(spec.get("selector"), (s.get("metadata") or {}).get("labels") or {})]
        if not chosen_svcs:
            problems.append(f"{where}: selects no Service in {ns_sel.get('matchNames') or [m.namespace(mon_obj)]}")
        for svc in chosen_svcs:
            ports = {p.get("name"): p for p in (svc.get("spec") or {}).get("ports") or []}
            for ep in spec.get("endpoints") or []:
                if ep.get("port") not in ports:
                    problems.append(f"{where}: {m.ref(svc)} has no port {ep.get('port')!r}")
                    continue
                selector = (svc.get("spec") or {}).get("selector")
                if selector is None:
                    continue  # endpoints kept by their owner (API server, operator)
                backends = [pt for pt in pods if pt.namespace == m.namespace(svc) and _selects({"matchLabels": selector}, pt.labels)]
                target = ports[ep["port"]].get("targetPort", ports[ep["port"]].get("port"))
                if not backends:
                    problems.append(f"{where}: {m.ref(svc)} selects no pod")
                for pt in backends:
                    if target not in _container_ports(pt):
                        problems.append(f"{where}: {m.ref(svc)} port {ep['port']!r} targets {target!r}, which {pt.where} lacks")
    return problems


def cluster_objects(r) -> list[dict]:
    """What runs in the cluster: ours, the charts', the operator's pods and the stand-ins."""
    return r.cluster_objects + operator_pods.operator_workloads(r.chart_objects) + EXTERNAL_SERVICES


def test_every_monitor_selects_pods_that_exist_on_a_port_they_have(r):
    objects = cluster_objects(r)
    monitors = [o for o in objects if o.get("kind") in ("ServiceMonitor", "PodMonitor")]
    assert {"PodMonitor monitoring/keda-operator", "ServiceMonitor monitoring/monitoring-prometheus"} <= {m.ref(o) for o in monitors}
    assert monitor_problems(objects) == []


@pytest.mark.parametrize("break_it, expected", [
    (lambda o: o["spec"]["podMetricsEndpoints"][0].update(port="http"), "has no port 'http'"),  # what we had
    (lambda o: o["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "keda"}), "selects no pod"),
    (lambda o: o["spec"].update(namespaceSelector={"matchNames": ["platform"]}), "selects no pod in ['platform']"),
])
def test_the_monitor_check_names_a_broken_monitor(break_it, expected):
    objects = copy.deepcopy(cluster_objects(rendered("local-deployment")))
    keda_monitor = next(o for o in objects if m.ref(o) == "PodMonitor monitoring/keda-operator")
    break_it(keda_monitor)
    problems = monitor_problems(objects)
    assert any(p.startswith("PodMonitor monitoring/keda-operator") and expected in p for p in problems), problems


def test_services_the_outputs_and_scripts_name_exist_with_their_ports(r):
    """grafanaService:80 (scripts/grafana.sh), prometheusService:9090 (scripts/report.sh,
    docs) are Services the chart really creates in the monitoring namespace."""
    import re

    from components import monitoring as comp

    services = {(m.namespace(s), m.name(s)): {p["port"] for p in s["spec"]["ports"]} for s in m.by_kind(r.chart_objects, "Service")}
    assert comp.GRAFANA_PORT in services[("monitoring", comp.GRAFANA_SERVICE)]
    assert comp.PROMETHEUS_PORT in services[("monitoring", comp.PROMETHEUS_SERVICE)]
    from tests.infra.validation.paths import REPO_ROOT

    scripts = {p.name: p.read_text() for p in (REPO_ROOT / "scripts").glob("*.sh")}
    assert re.search(r'port-forward "svc/\$SVC" "\$PORT:80"', scripts["grafana.sh"])
    assert re.search(r'port-forward "svc/\$SVC" "\$LOCAL_PORT:9090"', scripts["report.sh"])
    docs = ["README.md", "CONTRIBUTING.md", *sorted(f"docs/{p.name}" for p in (REPO_ROOT / "docs").glob("*.md"))]
    for doc in docs:
        for name, port in re.findall(r"svc/(monitoring-[a-z-]+) (\d+)", (REPO_ROOT / doc).read_text()):
            assert int(port) in services.get(("monitoring", name), set()), f"{doc}: svc/{name} {port}"


def test_the_variants_cover_both_kubernetes_versions():
    assert {rendered(v).k8s_version for v in VARIANT_IDS} == {"1.31", "1.36"}
    assert {BY_ID[v].stack for v in VARIANT_IDS} == {"local", "aks"}
