"""A small NetworkPolicy evaluator: would a connection between two pods be allowed?

Semantics of ``networking.k8s.io/v1`` NetworkPolicy, as a CNI enforces them: a pod is
isolated for ingress (egress) once any policy selecting it lists that policy type; then
a connection is allowed only if some such policy has a rule matching the peer and the
port. A connection needs both the source's egress and the destination's ingress to
allow it. ``ipBlock`` peers are matched against "external" endpoints only, except a
catch-all (``0.0.0.0/0`` / ``::/0``), which we count as matching pods too (it does,
for any pod CIDR not listed in ``except``): the conservative reading for deny checks.
An external endpoint with an ``ip`` matches an ``ipBlock`` only if the address is inside
its ``cidr`` and outside its ``except`` ranges; one without an ``ip`` (an address we
cannot know offline) matches any ``ipBlock``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

_CATCH_ALL = {"0.0.0.0/0", "::/0"}


@dataclass(frozen=True)
class Endpoint:
    """A pod (``namespace`` set) or an address outside the cluster (``external``)."""

    name: str
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    named_ports: dict[str, int] = field(default_factory=dict)
    external: bool = False
    ip: str | None = None
    """An external endpoint's address, when known."""


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (``None`` matches nothing, ``{}`` everything)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def is_select_all(selector: dict[str, Any] | None) -> bool:
    return selector is not None and not selector.get("matchLabels") and not selector.get("matchExpressions")


class Cluster:
    """Policies plus namespace labels; answers ``allowed(src, dst, port, protocol)``."""

    def __init__(self, policies: list[dict[str, Any]], namespace_labels: dict[str, dict[str, str]] | None = None):
        self.policies = policies
        self._ns_labels = namespace_labels or {}

    def ns_labels(self, ns: str) -> dict[str, str]:
        labels = {"kubernetes.io/metadata.name": ns}
        labels.update(self._ns_labels.get(ns, {}))
        return labels

    @staticmethod
    def policy_types(policy: dict[str, Any]) -> set[str]:
        spec = policy.get("spec") or {}
        if spec.get("policyTypes"):
            return set(spec["policyTypes"])
        return {"Ingress"} | ({"Egress"} if "egress" in spec else set())

    def selecting(self, pod: Endpoint, direction: str) -> list[dict[str, Any]]:
        if pod.external:
            return []
        return [
            p
            for p in self.policies
            if (p.get("metadata") or {}).get("namespace") == pod.namespace
            and selector_matches((p.get("spec") or {}).get("podSelector"), pod.labels)
            and direction in self.policy_types(p)
        ]

    def _peer_matches(self, policy_ns: str, peer: dict[str, Any], other: Endpoint) -> bool:
        if "ipBlock" in peer:
            block = peer.get("ipBlock") or {}
            cidr = block.get("cidr")
            if not other.external:
                return cidr in _CATCH_ALL
            if other.ip is None:
                return True
            addr = ipaddress.ip_address(other.ip)
            return addr in ipaddress.ip_network(cidr) and not any(
                addr in ipaddress.ip_network(x) for x in block.get("except") or [])
        if other.external:
            return False
        ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
        if ns_sel is None and pod_sel is None:
            return False
        if ns_sel is not None:
            ns_ok = selector_matches(ns_sel, self.ns_labels(other.namespace or ""))
        else:
            ns_ok = other.namespace == policy_ns
        pod_ok = True if pod_sel is None else selector_matches(pod_sel, other.labels)
        return ns_ok and pod_ok

    @staticmethod
    def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str, dst: Endpoint) -> bool:
        if not ports:
            return True
        for p in ports:
            if (p.get("protocol") or "TCP") != protocol:
                continue
            value = p.get("port")
            if value is None:
                return True
            if isinstance(value, str) and not value.isdigit():
                value = dst.named_ports.get(value)
                if value is None:
                    continue
            value = int(value)
            end = p.get("endPort") or value
            if value <= port <= int(end):
                return True
        return False

    def _direction_allows(self, pod: Endpoint, other: Endpoint, port: int, protocol: str, direction: str, dst: Endpoint) -> bool:
        policies = self.selecting(pod, direction)
        if not policies:
            return True
        rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        for policy in policies:
            policy_ns = (policy.get("metadata") or {}).get("namespace")
            for rule in (policy.get("spec") or {}).get(rules_key) or []:
                peers = rule.get(peers_key)
                peer_ok = not peers or any(self._peer_matches(policy_ns, peer, other) for peer in peers)
                if peer_ok and self._port_matches(rule.get("ports"), port, protocol, dst):
                    return True
        return False

    def egress_allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._direction_allows(src, dst, port, protocol, "Egress", dst)

    def ingress_allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._direction_allows(dst, src, port, protocol, "Ingress", dst)

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self.egress_allowed(src, dst, port, protocol) and self.ingress_allowed(src, dst, port, protocol)
