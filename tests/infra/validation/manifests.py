"""Loading rendered manifests and walking the pods inside them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: libyaml's loader when PyYAML has it (10x faster, same results for these files).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Kinds whose spec.template is a PodTemplateSpec of pods meant to keep running.
_LONG_RUNNING_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
# Cluster-scoped kinds (everything else must say which namespace it lives in).
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ClusterTriggerAuthentication",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
}


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader, plus YAML 1.1's ``=`` "value" tag as a plain string (the
    Prometheus Operator CRDs have ``- =`` in enums, which PyYAML cannot construct)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def yaml_load_all(text: str) -> list[Any]:
    """Every document of a multi-document YAML text (``None`` documents dropped)."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def load_k8s_dir(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every object under ``<out_dir>/k8s/*.yaml`` (one object per file), in file order."""
    k8s_dir = Path(out_dir) / "k8s"
    files = sorted(k8s_dir.glob("*.yaml"))
    if not files:
        raise FileNotFoundError(f"no manifests under {k8s_dir}")
    objects = []
    for path in files:
        docs = [d for d in yaml.load_all(path.read_text(), Loader=_LOADER) if d is not None]
        if len(docs) != 1:
            raise ValueError(f"{path}: expected one object per file, found {len(docs)}")
        objects.append(docs[0])
    return objects


def load_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def ref(obj: dict[str, Any]) -> str:
    """``Kind namespace/name`` (``Kind name`` when cluster-scoped)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    name = meta.get("name", "<no name>")
    return f"{obj.get('kind', '<no kind>')} {ns + '/' if ns else ''}{name}"


def namespace(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("namespace")


def name(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("name")


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


@dataclass(frozen=True)
class PodTemplate:
    """A pod template found in a rendered object."""

    owner: dict[str, Any]
    """The object holding the template (Deployment, ScaledJob, ...)."""
    path: str
    """Where the template is inside ``owner`` (e.g. ``spec.template``)."""
    template: dict[str, Any]
    """``{metadata, spec}``; for a bare Pod the Pod itself."""
    long_running: bool
    """False for run-to-completion pods of a plain Job/CronJob."""

    @property
    def where(self) -> str:
        return f"{ref(self.owner)} ({self.path})"

    @property
    def spec(self) -> dict[str, Any]:
        return self.template.get("spec") or {}

    @property
    def labels(self) -> dict[str, str]:
        return (self.template.get("metadata") or {}).get("labels") or {}

    @property
    def namespace(self) -> str | None:
        return namespace(self.owner)

    def containers(self, include_init: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(field, container)`` for containers (and init containers)."""
        fields = ("initContainers", "containers") if include_init else ("containers",)
        for field in fields:
            for container in self.spec.get(field) or []:
                yield field, container


def pod_templates(objects: list[dict[str, Any]]) -> list[PodTemplate]:
    """Every pod template in the objects, including a ScaledJob's ``jobTargetRef``."""
    found = []
    for obj in objects:
        kind = obj.get("kind")
        spec = obj.get("spec") or {}
        if kind in _LONG_RUNNING_TEMPLATE_KINDS:
            found.append(PodTemplate(obj, "spec.template", spec.get("template") or {}, True))
        elif kind == "Job":
            found.append(PodTemplate(obj, "spec.template", spec.get("template") or {}, False))
        elif kind == "CronJob":
            template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
            found.append(PodTemplate(obj, "spec.jobTemplate.spec.template", template, False))
        elif kind == "Pod":
            found.append(PodTemplate(obj, ".", obj, True))
        elif kind == "ScaledJob" and str(obj.get("apiVersion", "")).startswith("keda.sh/"):
            template = (spec.get("jobTargetRef") or {}).get("template") or {}
            # A ScaledJob's worker drains the queue until idle: long-running by design.
            found.append(PodTemplate(obj, "spec.jobTargetRef.template", template, True))
    return found


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def find(objects: list[dict[str, Any]], kind: str, ns: str | None, obj_name: str) -> dict | None:
    for obj in objects:
        if obj.get("kind") == kind and name(obj) == obj_name and namespace(obj) == ns:
            return obj
    return None


def container_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``name -> env entry`` of a container."""
    return {e.get("name"): e for e in container.get("env") or [] if isinstance(e, dict)}


def password_secret_ref(pod_spec: dict[str, Any], container: dict[str, Any]) -> dict[str, Any] | None:
    """``{name, key}`` of the Secret the container's Redis password comes from: the file
    ``REDIS_PASSWORD_FILE`` names in a Secret volume it mounts (the apps), or a
    ``secretKeyRef`` of ``REDIS_PASSWORD`` (redis-server, redis_exporter); None: neither."""
    env = container_env(container)
    path = (env.get("REDIS_PASSWORD_FILE") or {}).get("value")
    if path is None:
        return ((env.get("REDIS_PASSWORD") or {}).get("valueFrom") or {}).get("secretKeyRef")
    volumes = {v.get("name"): v for v in pod_spec.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        directory = str(mount.get("mountPath", "")).rstrip("/") + "/"
        source = (volumes.get(mount.get("name")) or {}).get("secret")
        if source is not None and path.startswith(directory):
            name = path[len(directory):]
            keys = [i["key"] for i in source.get("items") or [] if i.get("path") == name] or [name]
            return {"name": source.get("secretName"), "key": keys[0]}
    return None


def secret_keys(secret: dict[str, Any]) -> set[str]:
    return set((secret.get("data") or {}).keys()) | set((secret.get("stringData") or {}).keys())
