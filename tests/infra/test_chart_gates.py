"""Every object the charts create passes the gates ours pass (issue 17).

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


def test_the_variants_cover_both_kubernetes_versions():
    assert {rendered(v).k8s_version for v in VARIANT_IDS} == {"1.31", "1.36"}
    assert {BY_ID[v].stack for v in VARIANT_IDS} == {"local", "aks"}
