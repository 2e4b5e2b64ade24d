"""Who can read the apps' Secrets (the Redis key in ``redis-auth``), from the RBAC the stack
renders: ours and every chart's. Only KEDA's operator (its TriggerAuthentication reads the
key) and the Prometheus Operator (its upstream ClusterRole reads Secrets cluster-wide for
the scrape and Alertmanager configs it assembles; the chart offers no narrower role) may;
Grafana's dashboard sidecar searched every namespace with a ClusterRole on Secrets, and
kube-state-metrics listed Secrets cluster-wide."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.validation.render import VARIANT_IDS, rendered

READS = {"get", "list", "watch", "*"}
#: Service accounts allowed to read Secrets in the app namespace, and why (docstring).
ALLOWED = {"keda-operator", "monitoring-operator"}


def _grants_secret_reads(rule: dict[str, Any]) -> bool:
    return (bool({"", "*"} & set(rule.get("apiGroups") or []))
            and bool({"secrets", "*"} & set(rule.get("resources") or []))
            and bool(READS & set(rule.get("verbs") or []))
            and not rule.get("resourceNames"))


def secret_readers(objects: list[dict[str, Any]], namespace: str) -> set[str]:
    """Service accounts that may read any Secret in ``namespace``."""
    def reads(kind: str, name: str, ns: str | None) -> bool:
        for o in objects:
            meta = o.get("metadata") or {}
            if o.get("kind") == kind and meta.get("name") == name and (kind == "ClusterRole" or meta.get("namespace") == ns):
                return any(_grants_secret_reads(r) for r in o.get("rules") or [])
        return False

    found = set()
    for b in objects:
        kind, meta = b.get("kind"), b.get("metadata") or {}
        if kind not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if kind == "RoleBinding" and meta.get("namespace") != namespace:
            continue
        ref = b.get("roleRef") or {}
        if reads(ref.get("kind"), ref.get("name"), meta.get("namespace")):
            found |= {s["name"] for s in b.get("subjects") or [] if s.get("kind") == "ServiceAccount"}
    return found


@pytest.mark.parametrize("variant_id", [v for v in VARIANT_IDS if v.endswith("deployment")])
def test_only_keda_and_the_prometheus_operator_read_the_apps_secrets(variant_id):
    r = rendered(variant_id)
    namespace = next(o["metadata"]["name"] for o in r.objects if o.get("kind") == "Namespace"
                     and o["metadata"]["name"] not in ("keda", "monitoring"))
    readers = secret_readers(r.cluster_objects, namespace)
    assert "keda-operator" in readers  # the reader that must stay: the test sees bindings
    assert readers <= ALLOWED, f"can read Secrets in {namespace}: {sorted(readers - ALLOWED)}"


def test_a_cluster_wide_secret_reader_is_found():
    objects = [
        {"kind": "ClusterRole", "metadata": {"name": "r"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["list"]}]},
        {"kind": "ClusterRoleBinding", "metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "r"},
         "subjects": [{"kind": "ServiceAccount", "name": "spy", "namespace": "x"}]},
        {"kind": "Role", "metadata": {"name": "cm", "namespace": "platform"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}]},
        {"kind": "RoleBinding", "metadata": {"name": "c", "namespace": "platform"},
         "roleRef": {"kind": "Role", "name": "cm"}, "subjects": [{"kind": "ServiceAccount", "name": "ok"}]},
    ]
    assert secret_readers(objects, "platform") == {"spy"}
