"""The local stack's objects, as the program renders them, put to a real API server.

tools/render.py evaluates the program (Pulumi mocks) and gives every Kubernetes object and
Helm release it registers, with the inputs the provider would send. Here they go to the sim
with the real tools: each release through the pinned helm (install/upgrade with the
Release's own flags: atomic, wait), every other object through kubectl server-side apply, in
the order the program's dependencies give (namespaces, then releases, then the rest). Then the
live objects are compared with the rendered ones: every field the program sets must come back
as sent; fields the server adds (defaults, status) are allowed.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from e2e.sim import CONTEXT, Sim

FIELD_MANAGER = "e2e-render"
_SUFFIX = {"": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_QUANTITY = re.compile(r"^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity ("500m", "1Gi", 2) as a number, or None if it is not one."""
    match = _QUANTITY.match(str(value))
    if not match:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]
    except InvalidOperation:
        return None


def differences(sent: Any, live: Any, path: str = "") -> list[str]:
    """Where ``live`` lacks or changed what ``sent`` set (extra live fields are defaults)."""
    if isinstance(sent, dict):
        if not isinstance(live, dict):
            return [f"{path}: sent a map, server has {live!r}"]
        found = []
        for key, value in sent.items():
            if key not in live:
                if value in (None, {}, [], False, ""):
                    continue  # the server drops empty values
                found.append(f"{path}.{key}: missing on the server")
            else:
                found += differences(value, live[key], f"{path}.{key}")
        return found
    if isinstance(sent, list):
        if not isinstance(live, list) or len(live) != len(sent):
            return [f"{path}: sent {len(sent)} items, server has {live!r}"[:300]]
        return [d for i, (s, v) in enumerate(zip(sent, live, strict=True)) for d in differences(s, v, f"{path}[{i}]")]
    if sent == live or str(sent) == str(live):
        return []
    a, b = quantity(sent), quantity(live)
    if a is not None and a == b:
        return []
    return [f"{path}: sent {sent!r}, server has {live!r}"]


def ident(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"])


def describe(key: tuple[str, str, str, str]) -> str:
    api, kind, ns, name = key
    return f"{kind} {ns + '/' if ns else ''}{name} ({api})"


def _resource(api: str, kind: str) -> str:
    """kubectl's fully qualified name: Kind.version.group (the core group: Kind)."""
    group, _, version = api.rpartition("/")
    return f"{kind}.{version}.{group}" if group else kind


class Applier:
    """Applies renders of the program to the sim and takes them away again."""

    def __init__(self, cluster: Sim, helm: Path):
        self.cluster = cluster
        self.helm = helm

    def _run(self, cmd: list[str], what: str, timeout: float = 900) -> str:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise AssertionError(f"{what} failed ({out.returncode}): {(out.stderr or out.stdout).strip()[-4000:]}")
        return out.stdout

    def apply_objects(self, objects: list[dict[str, Any]]) -> None:
        """Server-side apply, one object at a time, so a refusal names the object."""
        for obj in objects:
            out = self.cluster.kubectl("apply", "--server-side", "--force-conflicts",
                                       f"--field-manager={FIELD_MANAGER}", "-f", "-",
                                       input=yaml.safe_dump(obj), check=False)
            if out.returncode != 0:
                raise AssertionError(f"the API server refused {describe(ident(obj))}: {out.stderr.strip()}")

    def install_release(self, release: Any) -> None:
        """helm upgrade --install with the Release's values and flags (atomic, wait)."""
        with tempfile.TemporaryDirectory(prefix="e2e-values-") as tmp:
            values = Path(tmp) / "values.yaml"
            values.write_text(yaml.safe_dump(release.values, sort_keys=False))
            self._run([str(self.helm), "upgrade", "--install", release.name, str(release.chart_dir),
                       "--namespace", release.namespace, "--values", str(values),
                       "--kubeconfig", str(self.cluster.kubeconfig), "--kube-context", CONTEXT,
                       "--atomic", "--cleanup-on-fail", "--wait", "--wait-for-jobs", "--timeout", "10m"],
                      f"helm install of release {release.name} ({release.chart} {release.version})")

    def uninstall_release(self, name: str, namespace: str) -> None:
        self._run([str(self.helm), "uninstall", name, "--namespace", namespace, "--wait", "--timeout", "5m",
                   "--kubeconfig", str(self.cluster.kubeconfig), "--kube-context", CONTEXT],
                  f"helm uninstall of release {name}")

    def releases(self) -> set[tuple[str, str]]:
        out = self._run([str(self.helm), "list", "--all-namespaces", "--all", "-o", "yaml",
                         "--kubeconfig", str(self.cluster.kubeconfig), "--kube-context", CONTEXT], "helm list")
        return {(r["name"], r["namespace"]) for r in yaml.safe_load(out) or []}

    def delete(self, key: tuple[str, str, str, str], wait: bool = True) -> None:
        api, kind, ns, name = key
        resource = _resource(api, kind)
        args = ["delete", resource, name, "--ignore-not-found", f"--wait={'true' if wait else 'false'}",
                "--timeout=180s"]
        if ns:
            args += ["-n", ns]
        self.cluster.kubectl(*args, timeout=240)

    def live(self, key: tuple[str, str, str, str]) -> dict[str, Any] | None:
        api, kind, ns, name = key
        resource = _resource(api, kind)
        args = ["get", resource, name, "--ignore-not-found", "-o", "yaml"]
        if ns:
            args += ["-n", ns]
        out = self.cluster.kubectl(*args).stdout
        return yaml.safe_load(out) if out.strip() else None
