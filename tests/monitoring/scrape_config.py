"""A prometheus.yml for processes on loopback that gives their series the labels the
Prometheus Operator gives them in the cluster, derived from the rendered ServiceMonitor /
PodMonitor objects (so the two cannot drift).

What the operator (v0.93) sets on a target, and what we emulate from the monitor and the
rendered workload it selects:

- ``job``: the value of the ``jobLabel`` label of the selected pod (PodMonitor) or Service
  (ServiceMonitor); without ``jobLabel``: ``<namespace>/<name>`` (PodMonitor) or the
  Service's name (ServiceMonitor);
- ``namespace``, ``pod``, ``container`` (the container declaring the scraped port),
  ``endpoint`` (the port's name), and ``service`` for a ServiceMonitor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from tests.infra.validation import manifests as m
from tests.infra.validation.netpol import selector_matches


@dataclass(frozen=True)
class Target:
    """One scrape target in the cluster, as the operator would label it."""

    monitor: str
    app: str
    labels: dict[str, str]
    path: str


def _container_with_port(pt: m.PodTemplate, port: str) -> dict[str, Any]:
    for _, container in pt.containers(include_init=False):
        if port in {p.get("name") for p in container.get("ports") or []}:
            return container
    raise AssertionError(f"{pt.where}: no container declares port {port!r}")


def _pod_templates(objects: list[dict[str, Any]], namespace: str, selector: dict[str, Any]) -> list[m.PodTemplate]:
    return [pt for pt in m.pod_templates(objects)
            if pt.namespace == namespace and selector_matches(selector, pt.labels)]


def targets(objects: list[dict[str, Any]]) -> list[Target]:
    """The targets the rendered monitors select among the rendered workloads (KEDA's operator,
    rendered by its Helm chart in the cluster, is not among them)."""
    out: list[Target] = []
    for mon in objects:
        kind, spec, ns = mon.get("kind"), mon.get("spec") or {}, m.namespace(mon)
        if kind == "PodMonitor":
            namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [ns]
            for endpoint in spec["podMetricsEndpoints"]:
                for pod_ns in namespaces:
                    for pt in _pod_templates(objects, pod_ns, spec["selector"]):
                        container = _container_with_port(pt, endpoint["port"])
                        job = pt.labels.get(spec.get("jobLabel", "")) or f"{ns}/{m.name(mon)}"
                        out.append(Target(m.name(mon), pt.labels.get("app.kubernetes.io/name", job), {
                            "job": job, "namespace": pod_ns, "container": container["name"],
                            "endpoint": endpoint["port"]}, endpoint.get("path", "/metrics")))
        elif kind == "ServiceMonitor":
            for svc in m.by_kind(objects, "Service"):
                svc_labels = (svc.get("metadata") or {}).get("labels") or {}
                if m.namespace(svc) != ns or not selector_matches(spec["selector"], svc_labels):
                    continue
                pods = _pod_templates(objects, ns, {"matchLabels": (svc.get("spec") or {}).get("selector") or {}})
                for endpoint in spec["endpoints"]:
                    svc_port = next(p for p in svc["spec"]["ports"] if p.get("name") == endpoint["port"])
                    for pt in pods:
                        container = _container_with_port(pt, str(svc_port.get("targetPort", endpoint["port"])))
                        job = svc_labels.get(spec.get("jobLabel", "")) or m.name(svc)
                        out.append(Target(m.name(mon), pt.labels.get("app.kubernetes.io/name", job), {
                            "job": job, "namespace": ns, "service": m.name(svc), "container": container["name"],
                            "endpoint": endpoint["port"]}, endpoint.get("path", "/metrics")))
    return out


def prometheus_config(bound: list[tuple[Target, str, str]], rule_files: list[str], interval: str = "1s") -> str:
    """prometheus.yml: one scrape job per monitor; each (target, pod name, host:port) a static
    target carrying the operator's labels."""
    jobs: dict[str, dict[str, Any]] = {}
    for target, pod, address in bound:
        job = jobs.setdefault(target.monitor, {
            "job_name": target.monitor, "metrics_path": target.path, "static_configs": []})
        job["static_configs"].append({"targets": [address], "labels": {**target.labels, "pod": pod}})
    return yaml.safe_dump({
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": rule_files,
        "scrape_configs": list(jobs.values()),
    }, sort_keys=False)
