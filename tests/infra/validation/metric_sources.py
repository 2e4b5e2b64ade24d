"""Every metric the dashboard and the alerts use comes from a scrape target that exists
in the rendered cluster (ours, the charts' and the operator's objects together).

A query names its source in one of two ways:

- by ``job="J"`` (our apps' metrics, and ``up``): some target the rendered monitors select
  must carry ``job`` J, as the Prometheus Operator sets it (the monitor's ``jobLabel``
  label of the pod or Service, else ``<namespace>/<monitor>`` for a PodMonitor, the
  Service's name for a ServiceMonitor);
- by its name, for the exporters we do not write: ``kube_*`` come from kube-state-metrics,
  ``keda_*`` from KEDA's operator (the metric names are those projects' own prefixes:
  kube-state-metrics internal/store, KEDA pkg/metricscollector). Such a target is found by
  the image its pod runs, not by the chart's labels, and must keep the exporter's labels
  (``honorLabels``): both report the *object's* namespace in ``namespace``, which the
  queries filter on, and without honorLabels Prometheus renames it ``exported_namespace``.

A series a rendered PrometheusRule records (``record: platform:...``) is a source too: its
rule's own expression is checked like any other query.

A metric with none of these is a problem: nothing says where it would come from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import manifests as m
from .netpol import selector_matches

#: Metric name prefix -> the image (repository, without tag) of the exporter that publishes it.
EXPORTER_IMAGES = {
    "kube_": "registry.k8s.io/kube-state-metrics/kube-state-metrics",
    "keda_": "ghcr.io/kedacore/keda",  # the operator; the metrics apiserver is keda-metrics-apiserver
}
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_JOB = re.compile(r'(?<![a-zA-Z0-9_])job\s*=\s*"([^"]*)"')


@dataclass(frozen=True)
class Target:
    """A pod a monitor scrapes, as the operator labels it."""

    monitor: str
    job: str
    images: frozenset[str]
    honor_labels: bool


def _repo(image: str) -> str:
    """``registry/name`` of an image reference, without its tag and digest."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]


def _images(pt: m.PodTemplate) -> frozenset[str]:
    return frozenset(_repo(c.get("image") or "") for _, c in pt.containers(include_init=False))


def scrape_targets(objects: list[dict[str, Any]]) -> list[Target]:
    """Every (monitor, pod template) pair the rendered monitors select."""
    pods = m.pod_templates(objects)
    services = m.by_kind(objects, "Service")
    out: list[Target] = []
    for mon in objects:
        kind, spec = mon.get("kind"), mon.get("spec") or {}
        if kind not in ("PodMonitor", "ServiceMonitor"):
            continue
        ns_sel = spec.get("namespaceSelector") or {}
        namespaces = None if ns_sel.get("any") else set(ns_sel.get("matchNames") or [m.namespace(mon)])
        in_ns = lambda ns, namespaces=namespaces: namespaces is None or ns in namespaces  # noqa: E731
        job_label = spec.get("jobLabel") or ""
        if kind == "PodMonitor":
            honor = any(ep.get("honorLabels") for ep in spec.get("podMetricsEndpoints") or [])
            for pt in pods:
                if in_ns(pt.namespace) and selector_matches(spec.get("selector"), pt.labels):
                    job = pt.labels.get(job_label) or f"{m.namespace(mon)}/{m.name(mon)}"
                    out.append(Target(m.ref(mon), job, _images(pt), honor))
            continue
        honor = any(ep.get("honorLabels") for ep in spec.get("endpoints") or [])
        for svc in services:
            svc_labels = (svc.get("metadata") or {}).get("labels") or {}
            if not (in_ns(m.namespace(svc)) and selector_matches(spec.get("selector"), svc_labels)):
                continue
            selector = (svc.get("spec") or {}).get("selector")
            backends = [pt for pt in pods if selector and pt.namespace == m.namespace(svc)
                        and selector_matches({"matchLabels": selector}, pt.labels)]
            job = svc_labels.get(job_label) or m.name(svc)
            for pt in backends or [None]:
                out.append(Target(m.ref(mon), job, _images(pt) if pt else frozenset(), honor))
    return out


def _rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rule (alerting or recording) of the rendered PrometheusRules."""
    return [rule for rule_obj in m.by_kind(objects, "PrometheusRule")
            for group in (rule_obj.get("spec") or {}).get("groups") or []
            for rule in group.get("rules") or []]


def queries(objects: list[dict[str, Any]], dashboard: list[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """``(where, PromQL)``: each dashboard query and each rendered alert rule's expression."""
    out = [(f"dashboard {title} / {legend}", expr) for title, legend, expr in dashboard]
    out += [(f"alert {rule.get('alert') or rule.get('record')}", str(rule["expr"]))
            for rule in _rules(objects) if rule.get("expr")]
    return out


def recorded(objects: list[dict[str, Any]]) -> set[str]:
    """The series the rendered PrometheusRules record."""
    return {str(rule["record"]) for rule in _rules(objects) if rule.get("record")}


def source_problems(objects: list[dict[str, Any]], dashboard: list[tuple[str, str, str]]) -> list[str]:
    """What each query needs that no rendered target gives, naming the query and the metric."""
    targets = scrape_targets(objects)
    jobs = {t.job for t in targets}
    records = recorded(objects)
    problems: list[str] = []
    for where, expr in queries(objects, dashboard):
        for metric, matchers in _SELECTOR.findall(expr):
            if metric in records:
                continue
            exporter = next((img for prefix, img in EXPORTER_IMAGES.items() if metric.startswith(prefix)), None)
            job = _JOB.search(matchers)
            if job:
                if job.group(1) not in jobs:
                    problems.append(f"{where}: {metric} asks for job={job.group(1)!r}, which no monitor's target has "
                                    f"(jobs: {sorted(jobs)})")
            elif exporter:
                found = [t for t in targets if exporter in t.images]
                if not found:
                    problems.append(f"{where}: {metric} comes from {exporter}, which no monitor scrapes")
                elif "namespace" in matchers and not any(t.honor_labels for t in found):
                    problems.append(f"{where}: {metric} filters on the object's namespace, but "
                                    f"{found[0].monitor} does not keep the exporter's labels (honorLabels)")
            else:
                problems.append(f"{where}: {metric} names no job and no known exporter: where does it come from?")
    return problems
