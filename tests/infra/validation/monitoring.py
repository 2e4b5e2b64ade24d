"""Checks of the monitoring component, as pure functions over rendered objects
and the kube-prometheus-stack release's values. Each returns a list of problems.

- ``values_key_problems``: every key path we set exists in the vendored chart's values.yaml
  or, under a sub-chart's name, in that sub-chart's, so a typo cannot be silently ignored by Helm.
- ``selection_problems``: Prometheus, as configured by those values, selects our
  ServiceMonitors, PodMonitors and PrometheusRules.
- (the chart's pods against Pod Security ``restricted``: tests/infra/test_chart_gates.py, on
  the real ``helm template`` render)
- ``metrics_ingress_problems``: metrics ports only from the monitoring namespace.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import yaml

from . import manifests as m
from .netpol import Cluster, Endpoint, selector_matches
from .paths import kps_chart_dir

#: Values that are Kubernetes objects copied verbatim into the pod spec (any field of their
#: type is valid, whatever the chart's default lists; the rendered object is validated strict).
KUBERNETES_TYPED = {"securityContext", "podSecurityContext", "containerSecurityContext", "resources"}
#: Values a sub-chart's templates read that its values.yaml documents only in a comment:
#: key path -> (sub-chart, template that reads it). Accepted only while the template does.
TEMPLATE_ONLY = {"grafana.rbac.useExistingRole": ("grafana", "templates/rolebinding.yaml")}


def _read_by_template(path: str) -> bool:
    if path not in TEMPLATE_ONLY:
        return False
    sub_chart, template = TEMPLATE_ONLY[path]
    text = (kps_chart_dir() / "charts" / sub_chart / template).read_text()
    return ".Values." + path.split(".", 1)[1] in text
MONITOR_KINDS = {"ServiceMonitor": "serviceMonitor", "PodMonitor": "podMonitor", "PrometheusRule": "rule"}


@functools.cache
def chart_defaults() -> dict[str, Any]:
    return yaml.safe_load((kps_chart_dir() / "values.yaml").read_text())


@functools.cache
def chart_keys() -> dict[str, Any]:
    """Every value the release accepts: kube-prometheus-stack's values.yaml with each
    vendored sub-chart's own values.yaml merged under the sub-chart's name (what Helm
    passes to it)."""
    values = copy.deepcopy(chart_defaults())
    for sub in sorted((kps_chart_dir() / "charts").iterdir()):
        sub_values = sub / "values.yaml"
        if sub_values.is_file():
            values[sub.name] = _merge_keys(yaml.safe_load(sub_values.read_text()) or {}, values.get(sub.name) or {})
    return values


def _merge_keys(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge_keys(base[key], value) if isinstance(base.get(key), dict) and isinstance(value, dict) else value
    return out


def merged_values(values: dict[str, Any]) -> dict[str, Any]:
    """The chart's defaults with ``values`` merged over them (Helm's rule: maps merge, the rest replaces)."""
    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for key, value in over.items():
                out[key] = merge(base.get(key), value)
            return out
        return copy.deepcopy(over)

    return merge(chart_defaults(), values)


def get(values: dict[str, Any], path: str, default: Any = None) -> Any:
    cur: Any = values
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return default
        cur = cur[key]
    return cur


def values_key_problems(values: dict[str, Any], defaults: dict[str, Any] | None = None,
                        chart: str = "kube-prometheus-stack") -> list[str]:
    """Key paths in ``values`` that the chart (or the sub-chart they address) does not know.
    Below a default that is an empty map or null (``resources: {}``, selectors), any key is
    accepted: the chart passes it through."""
    defaults = chart_keys() if defaults is None else defaults
    problems: list[str] = []

    def walk(ours: dict[str, Any], theirs: Any, path: tuple[str, ...]) -> None:
        for key, value in ours.items():
            here = path + (key,)
            if set(path) & KUBERNETES_TYPED:
                continue  # a Kubernetes object the chart copies in: the strict schema of the render checks it
            if not isinstance(theirs, dict) or key not in theirs:
                if chart == "kube-prometheus-stack" and _read_by_template(".".join(here)):
                    continue
                problems.append(f"{'.'.join(here)}: not a value of {chart} (typo?)")
                continue
            default = theirs[key]
            if isinstance(value, dict) and isinstance(default, dict) and default:
                walk(value, default, here)

    walk(values, defaults, ())
    return problems


def selection_problems(values: dict[str, Any], objects: list[dict[str, Any]]) -> list[str]:
    """Would the chart's Prometheus pick up each of our monitors and rules?

    With ``<kind>SelectorNilUsesHelmValues`` true (the chart's default) an empty selector
    becomes ``release: <release name>``; with it false, the selectors apply as given
    (``{}`` = everything). Namespace selectors are matched against the namespace's name label.
    """
    spec = get(merged_values(values), "prometheus.prometheusSpec") or {}
    problems: list[str] = []
    for obj in objects:
        prefix = MONITOR_KINDS.get(obj.get("kind", ""))
        if prefix is None:
            continue
        selector = spec.get(f"{prefix}Selector") or {}
        ns_selector = spec.get(f"{prefix}NamespaceSelector") or {}
        if spec.get(f"{prefix}SelectorNilUsesHelmValues", True) and not selector:
            problems.append(f"{m.ref(obj)}: {prefix}SelectorNilUsesHelmValues is true: only release-labelled objects are selected")
            continue
        labels = (obj.get("metadata") or {}).get("labels") or {}
        ns_labels = {"kubernetes.io/metadata.name": m.namespace(obj) or ""}
        if not selector_matches(selector, labels):
            problems.append(f"{m.ref(obj)}: labels {labels} do not match {prefix}Selector {selector}")
        if not selector_matches(ns_selector, ns_labels):
            problems.append(f"{m.ref(obj)}: namespace not matched by {prefix}NamespaceSelector {ns_selector}")
    return problems


def metrics_ingress_problems(objects: list[dict[str, Any]], monitoring_ns: str, ports: dict[str, int]) -> list[str]:
    """Each app's metrics port: open to a pod of the monitoring namespace, closed to a pod of
    the app namespace and of any other namespace."""
    policies = m.by_kind(objects, "NetworkPolicy")
    cluster = Cluster(policies, {})
    prometheus = Endpoint("prometheus", monitoring_ns, {"app.kubernetes.io/name": "prometheus"})
    problems: list[str] = []
    templates = {pt.labels.get("app.kubernetes.io/name"): pt for pt in m.pod_templates(objects)}
    for app, port in ports.items():
        pt = templates.get(app)
        if pt is None:
            problems.append(f"no pod template for {app}")
            continue
        pod = Endpoint(app, pt.namespace, pt.labels)
        if not cluster.ingress_allowed(prometheus, pod, port):
            problems.append(f"{app}: Prometheus ({monitoring_ns}) cannot reach metrics port {port}")
        for intruder in (Endpoint("stranger", pt.namespace, {"test.invalid/stranger": "yes"}),
                         Endpoint("outsider", "other-ns", {"app.kubernetes.io/name": "prometheus"})):
            if cluster.ingress_allowed(intruder, pod, port):
                problems.append(f"{app}: metrics port {port} accepts ingress from {intruder.name} ({intruder.namespace})")
    return problems
