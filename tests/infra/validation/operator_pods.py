"""The pods the Prometheus Operator will create from the chart's ``Prometheus`` and
``Alertmanager`` custom resources, derived from the operator's own code.

Neither Helm nor our program creates these pods: the operator (v0.93.1) turns each CR into
a StatefulSet. What it puts in the pod is read from its source (prometheus-operator,
``pkg/prometheus/server/statefulset.go``, ``pkg/alertmanager/statefulset.go``,
``pkg/operator/config_reloader.go``, at v0.93.0, the newest tag in the snapshot we could read;
v0.93.1 is a patch release) and rebuilt here from the CR's fields:

- labels: ``app.kubernetes.io/name`` (``prometheus`` / ``alertmanager``), ``app.kubernetes.io/
  managed-by: prometheus-operator``, ``app.kubernetes.io/instance: <name>``,
  ``app.kubernetes.io/version``, ``prometheus|alertmanager: <name>`` and, for Prometheus,
  ``operator.prometheus.io/name: <name>``, ``operator.prometheus.io/shard: "0"``; plus
  ``spec.podMetadata.labels``;
- the pod ``securityContext`` is ``spec.securityContext`` as given; ``hostNetwork`` is
  ``spec.hostNetwork``; ``automountServiceAccountToken`` defaults to true;
- every container the operator adds (``prometheus`` or ``alertmanager``, ``config-reloader``,
  init ``init-config-reloader``) gets ``readOnlyRootFilesystem: true``,
  ``allowPrivilegeEscalation: false``, ``capabilities.drop: [ALL]`` and nothing else; no
  container-level seccomp, runAsNonRoot or runAsUser (those come from the pod);
- ports: Prometheus ``spec.portName`` (default ``web``) 9090 and the reloader's
  ``reloader-web`` 8080; Alertmanager ``spec.portName`` (default ``web``) 9093,
  ``mesh-tcp`` 9094/TCP, ``mesh-udp`` 9094/UDP, and ``reloader-web`` 8080;
- volumes: secrets, configMaps, a projected TLS volume and emptyDirs (``storage`` unset),
  plus ``spec.volumes``; ``spec.containers``/``spec.initContainers`` are merged by name
  (a strategic merge: their fields win).

Assumed, not derived: ``spec.storage`` unset (the stack uses emptyDir), no Thanos sidecar,
no ``listenLocal``, one shard and the chart's default replica count (1).
"""

from __future__ import annotations

import copy
from typing import Any

from . import manifests as m

_OPERATOR_SC = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
RELOADER_PORT = {"name": "reloader-web", "containerPort": 8080, "protocol": "TCP"}


def _container(name: str, ports: list[dict[str, Any]], resources: dict[str, Any] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "securityContext": copy.deepcopy(_OPERATOR_SC), "ports": ports}
    if resources:
        c["resources"] = copy.deepcopy(resources)
    return c


def _merge_by_name(ours: list[dict[str, Any]], theirs: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    out = [copy.deepcopy(c) for c in ours]
    for patch in theirs or []:
        target = next((c for c in out if c["name"] == patch.get("name")), None)
        if target is None:
            out.append(copy.deepcopy(patch))
            continue
        for key, value in patch.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **copy.deepcopy(value)}
            else:
                target[key] = copy.deepcopy(value)
    return out


def _volumes(name: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": "config", "secret": {"secretName": name}},
        {"name": "tls-assets", "projected": {"sources": []}},
        {"name": "config-out", "emptyDir": {"medium": "Memory"}},
        {"name": "db", "emptyDir": {}},
        {"name": "web-config", "secret": {"secretName": f"{name}-web-config"}},
        *copy.deepcopy(spec.get("volumes") or []),
    ]


def _statefulset(cr: dict[str, Any], app: str, containers: list[dict[str, Any]], extra_labels: dict[str, str]) -> dict[str, Any]:
    name, spec = m.name(cr), cr.get("spec") or {}
    labels = {
        **((spec.get("podMetadata") or {}).get("labels") or {}),
        "app.kubernetes.io/version": str(spec.get("version", "")),
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/managed-by": "prometheus-operator",
        "app.kubernetes.io/instance": name,
        app: name,
        **extra_labels,
    }
    pod_spec: dict[str, Any] = {
        "containers": _merge_by_name(containers, spec.get("containers")),
        "initContainers": _merge_by_name([_container("init-config-reloader", [])], spec.get("initContainers")),
        "securityContext": copy.deepcopy(spec.get("securityContext") or {}),
        "serviceAccountName": spec.get("serviceAccountName", "default"),
        "automountServiceAccountToken": spec.get("automountServiceAccountToken", True),
        "volumes": _volumes(f"{app}-{name}", spec),
    }
    if spec.get("hostNetwork"):
        pod_spec["hostNetwork"] = True
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": f"{app}-{name}", "namespace": m.namespace(cr),
                     "annotations": {"redis-keda-platform/derived-from": f"{cr['kind']} {m.namespace(cr)}/{name}"}},
        "spec": {"replicas": spec.get("replicas", 1), "serviceName": f"{app}-operated",
                 "selector": {"matchLabels": {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", app)}},
                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
    }


def prometheus_statefulset(cr: dict[str, Any]) -> dict[str, Any]:
    spec = cr.get("spec") or {}
    port = {"name": spec.get("portName", "web"), "containerPort": 9090, "protocol": "TCP"}
    containers = [_container("prometheus", [port], spec.get("resources")), _container("config-reloader", [RELOADER_PORT])]
    return _statefulset(cr, "prometheus", containers,
                        {"operator.prometheus.io/name": m.name(cr) or "", "operator.prometheus.io/shard": "0"})


def alertmanager_statefulset(cr: dict[str, Any]) -> dict[str, Any]:
    spec = cr.get("spec") or {}
    ports = [{"name": spec.get("portName", "web"), "containerPort": 9093, "protocol": "TCP"},
             {"name": "mesh-tcp", "containerPort": 9094, "protocol": "TCP"},
             {"name": "mesh-udp", "containerPort": 9094, "protocol": "UDP"}]
    containers = [_container("alertmanager", ports, spec.get("resources")), _container("config-reloader", [RELOADER_PORT])]
    return _statefulset(cr, "alertmanager", containers, {})


DERIVED = {"Prometheus": prometheus_statefulset, "Alertmanager": alertmanager_statefulset}


def operator_workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The StatefulSets the operator will create for every Prometheus / Alertmanager CR."""
    return [DERIVED[o["kind"]](o) for o in objects
            if o.get("kind") in DERIVED and str(o.get("apiVersion", "")).startswith("monitoring.coreos.com/")]
