"""The whole cluster's traffic, computed by network-config-analyzer (IBM np-guard, pinned in
requirements-nca.txt, its own venv ``.venv-nca``) from the NetworkPolicies and the
workloads: ours, the charts', the operator's StatefulSets, and stand-ins with their real
labels for what neither creates (CoreDNS, the API server, metrics-server, a pod in another
namespace, a stranger pod in the app namespace).

``connectivity(objects)`` runs ``nca --connectivity ... -o txt_no_fw_rules`` (one line per
allowed pair and protocol cube: ``src => dst : connections``; a pair allowed TCP on some
ports and UDP on others gets two lines) and parses it into a ``Connectivity`` that answers
``allows(src, dst, protocol, port)``. An address outside the cluster is named by itself
(``8.8.8.8``, ``169.254.169.254``): it is looked up in the IP ranges NCA splits the outside
into (``0.0.0.0-169.253.255.255``, ...). A ScaledJob's Jobs are stood in by a Job of
its ``jobTargetRef`` (NCA does not know KEDA's kinds).
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import manifests as m
from .paths import REPO_ROOT

NCA = REPO_ROOT / ".venv-nca" / "bin" / "nca"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "Pod", "ReplicaSet"}
OUTSIDE = "0.0.0.0-255.255.255.255"
#: Addresses outside the cluster the flow table names: a public one on the internet, and the
#: instance metadata endpoint (Azure IMDS; the same address on every cloud).
INTERNET = "8.8.8.8"
METADATA = "169.254.169.254"


def _pod(name: str, ns: str, labels: dict[str, str], ports: list[tuple[str, int, str]] = ()) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": name, "image": "stand-in", "ports": [
                    {"name": n, "containerPort": p, "protocol": proto} for n, p, proto in ports]}]}}}}


#: What runs in every cluster besides the stack, with the labels kind and AKS give it.
STAND_INS = [
    _pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]),
    _pod("kube-apiserver", "kube-system", {"component": "kube-apiserver", "tier": "control-plane"}, [("https", 6443, "TCP")]),
    _pod("metrics-server", "kube-system", {"k8s-app": "metrics-server"}, [("https", 10250, "TCP")]),
    _pod("somebody", "elsewhere", {"app.kubernetes.io/name": "somebody"}),
    # A pod the user labelled to call the cache API (cacheApiCallers: labelled).
    _pod("caller", "elsewhere", {"app.kubernetes.io/name": "caller", "redis-keda-platform/cache-api-client": "true"}),
]


def stranger(ns: str) -> dict[str, Any]:
    return _pod("stranger", ns, {"test.invalid/stranger": "yes"})


def _namespaces(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = {m.namespace(o) for o in objects if m.namespace(o)} | {m.name(o) for o in m.by_kind(objects, "Namespace")}
    declared = {m.name(o): o for o in m.by_kind(objects, "Namespace")}
    out = []
    for ns in sorted(n for n in names if n):
        labels = dict(((declared.get(ns) or {}).get("metadata") or {}).get("labels") or {})
        labels["kubernetes.io/metadata.name"] = ns
        out.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})
    return out


def _workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for o in objects:
        if o.get("kind") in WORKLOAD_KINDS:
            out.append(o)
        elif o.get("kind") == "ScaledJob":
            out.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": dict(o["metadata"]),
                        "spec": {"template": o["spec"]["jobTargetRef"]["template"]}})
    return out


@dataclass(frozen=True)
class Conn:
    """One cube of allowed connections: protocols (None = any) and port ranges (None = any)."""

    protocols: frozenset[str] | None
    negated_protocols: bool
    ports: tuple[tuple[int, int], ...] | None

    def allows(self, protocol: str, port: int) -> bool:
        if self.protocols is not None and ((protocol in self.protocols) == self.negated_protocols):
            return False
        return self.ports is None or any(lo <= port <= hi for lo, hi in self.ports)


_CUBE = re.compile(r"\{([^}]*)\}")


def parse_connections(text: str) -> tuple[bool, list[Conn]]:
    """``(negated, cubes)`` of NCA's connection string: ``All connections``, ``{protocols:TCP,
    dst_ports:6379}``, ``{protocols:TCP, UDP,dst_ports:53}``, ``All but {...}``."""
    text = text.strip()
    if text == "All connections":
        return False, [Conn(None, False, None)]
    negated = text.startswith("All but ")
    cubes = []
    for body in _CUBE.findall(text):
        match = re.fullmatch(r"(?:protocols:(?P<protos>.*?))?(?:,?dst_ports:(?P<ports>[\d,\-]+))?", body)
        if not match or not body:
            raise ValueError(f"unknown NCA connection form: {text!r}")
        protos = match.group("protos")
        neg = bool(protos and protos.startswith("all but "))
        names = frozenset(p.strip() for p in (protos or "").removeprefix("all but ").split(",") if p.strip()) or None
        ports = None
        if match.group("ports"):
            ports = tuple((int(a), int(b or a)) for a, _, b in (r.partition("-") for r in match.group("ports").split(",")))
        cubes.append(Conn(names, neg, ports))
    if not cubes:
        raise ValueError(f"unknown NCA connection form: {text!r}")
    return negated, cubes


#: Joins the connection strings of NCA's several lines for one pair (any of them allows).
LINES = " ; "


def _address(name: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(name)
    except ValueError:
        return None


def _in_range(addr: ipaddress.IPv4Address, endpoint: str) -> bool:
    """Whether NCA's IP endpoint (``a-b``, ``a``, or several joined by commas) holds ``addr``."""
    for part in endpoint.split(","):
        lo, _, hi = part.strip().partition("-")
        low, high = _address(lo), _address(hi or lo)
        if low is None or high is None:
            return False
        if low <= addr <= high:
            return True
    return False


@dataclass
class Connectivity:
    pairs: dict[tuple[str, str], str]
    """``(src, dst) -> NCA's connection string``; src/dst as ``ns/name`` or an IP range.
    Several lines for one pair are joined by ``LINES``."""

    @staticmethod
    def _matches(name: str, endpoint: str) -> bool:
        addr = _address(name)
        if addr is None:
            return name == endpoint
        return "/" not in endpoint and _in_range(addr, endpoint)

    def allows(self, src: str, dst: str, protocol: str, port: int) -> bool:
        # NCA merges the outside's ranges per pair (a pair's line may name 0.0.0.0-169.253.255.255,
        # another's 0.0.0.0-255.255.255.255): an address is matched against each pair's own.
        texts = [text for (s, d), text in self.pairs.items() if self._matches(src, s) and self._matches(dst, d)]
        for line in (ln for text in texts for ln in text.split(LINES)):
            negated, cubes = parse_connections(line)
            if any(c.allows(protocol, port) for c in cubes) != negated:
                return True
        return False

    def endpoints(self) -> set[str]:
        return {e for pair in self.pairs for e in pair}


_LINE = re.compile(r"^(?P<src>\S+) => (?P<dst>\S+) : (?P<conn>.+)$")


def _name(endpoint: str) -> str:
    """``platform/worker[Deployment]`` -> ``platform/worker``; IP ranges as they are."""
    return re.sub(r"\[[^\]]+\]$", "", endpoint)


def connectivity(objects: list[dict[str, Any]], extra: list[dict[str, Any]] = ()) -> Connectivity:
    """NCA's connectivity map of the objects plus the stand-ins (and ``extra``)."""
    if not NCA.exists():
        raise FileNotFoundError(f"{NCA} not found: run `make setup` (network-config-analyzer lives in .venv-nca)")
    workloads = _workloads(objects) + STAND_INS + list(extra)
    with tempfile.TemporaryDirectory(prefix="nca-") as tmp:
        root = Path(tmp)
        for sub, docs in (("np", m.by_kind(objects, "NetworkPolicy")), ("pods", workloads),
                          ("ns", _namespaces(objects + workloads))):
            (root / sub).mkdir()
            for i, doc in enumerate(docs):
                (root / sub / f"{i:03d}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        if not m.by_kind(objects, "NetworkPolicy"):
            raise ValueError("no NetworkPolicy to analyse")
        proc = subprocess.run([str(NCA), "--connectivity", str(root / "np"), "--pod_list", str(root / "pods"),
                               "--ns_list", str(root / "ns"), "-o", "txt_no_fw_rules"],
                              capture_output=True, text=True, timeout=300)
    if proc.returncode not in (0,) and "=>" not in proc.stdout:
        raise RuntimeError(f"nca failed ({proc.returncode}): {proc.stderr[-3000:]}")
    pairs = {}
    for line in proc.stdout.splitlines():
        match = _LINE.match(line.strip())
        if match:
            key = (_name(match.group("src")), _name(match.group("dst")))
            pairs[key] = f"{pairs[key]}{LINES}{match.group('conn')}" if key in pairs else match.group("conn")
    if not pairs:
        raise RuntimeError(f"nca printed no connection:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return Connectivity(pairs)
