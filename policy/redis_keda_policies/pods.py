"""Pod and container policies: restricted security contexts, resources, pinned images,
probes, no secret literals in env. They apply to every pod template a resource carries:
Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob
and KEDA's ScaledJob (``spec.jobTargetRef.template``).

A ``helm.v3.Release`` is one resource whose objects Helm renders in the cluster: its pods
are not visible to a policy pack (a ``helm.v4.Chart`` registers each object and is).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

#: resource type -> path of its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:core/v1:ReplicationController": ("spec", "template", "spec"),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:keda.sh/v1alpha1:ScaledJob": ("spec", "jobTargetRef", "template", "spec"),
}
#: Pods that run until stopped: they need liveness and readiness probes.
LONG_RUNNING = {
    "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:ReplicaSet", "kubernetes:core/v1:ReplicationController",
    "kubernetes:keda.sh/v1alpha1:ScaledJob",
}
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|CONNECTION_?STRING",
                         re.IGNORECASE)
_IMAGE = re.compile(r"^(?P<repo>[^@]+?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[a-f0-9]{64}))?$")


def pod_spec(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    path = POD_SPEC_PATHS.get(args.resource_type)
    if path is None:
        return None
    node: Any = args.props
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, Mapping) else None


def containers(spec: Mapping[str, Any], init: bool = True) -> Iterator[tuple[str, Mapping[str, Any]]]:
    kinds = ("initContainers", "containers") if init else ("containers",)
    for kind in kinds:
        for c in spec.get(kind) or []:
            yield f"{kind}[{c.get('name', '?')}]", c


def _where(args: ResourceValidationArgs, what: str = "") -> str:
    return f"{args.resource_type.rsplit(':', 1)[-1]} {args.name}{(' ' + what) if what else ''}"


def _pod_security(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args)
    if spec is None:
        return
    pod_ctx = spec.get("securityContext") or {}
    for where, c in containers(spec):
        ctx = c.get("securityContext") or {}
        if not (ctx.get("runAsNonRoot") is True or (pod_ctx.get("runAsNonRoot") is True and ctx.get("runAsNonRoot") is not False)):
            report(f"{_where(args, where)}: set securityContext.runAsNonRoot: true (on the pod or the container).", None)
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            report(f"{_where(args, where)}: runAsUser is 0 (root): run as a non-zero UID.", None)
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            report(f"{_where(args, where)}: set securityContext.seccompProfile.type: RuntimeDefault (pod or container).", None)
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag) is True:
            report(f"{_where(args)}: {flag}: true shares the node's namespaces: remove it.", None)
    for vol in spec.get("volumes") or []:
        if "hostPath" in vol:
            report(f"{_where(args)}: volume {vol.get('name')!r} is a hostPath: use an emptyDir, a PVC or a projected volume.", None)


def _container_security(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args)
    if spec is None:
        return
    for where, c in containers(spec):
        ctx = c.get("securityContext") or {}
        if ctx.get("allowPrivilegeEscalation") is not False:
            report(f"{_where(args, where)}: set securityContext.allowPrivilegeEscalation: false.", None)
        if ctx.get("privileged") is True:
            report(f"{_where(args, where)}: privileged: true: remove it.", None)
        if ctx.get("readOnlyRootFilesystem") is not True:
            report(f"{_where(args, where)}: set securityContext.readOnlyRootFilesystem: true "
                   "(mount an emptyDir where the process must write, e.g. /tmp).", None)
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            report(f"{_where(args, where)}: set securityContext.capabilities.drop: [ALL].", None)
        if caps.get("add"):
            report(f"{_where(args, where)}: capabilities.add {list(caps['add'])}: add none.", None)


def _resources(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args)
    if spec is None:
        return
    for where, c in containers(spec):
        res = c.get("resources") or {}
        missing = [f"{kind}.{r}" for kind in ("requests", "limits") for r in ("cpu", "memory")
                   if not (res.get(kind) or {}).get(r)]
        if missing:
            report(f"{_where(args, where)}: set resources {', '.join(missing)}.", None)


def image_problem(image: Any) -> str | None:
    m = _IMAGE.match(image) if isinstance(image, str) else None
    if not m:
        return f"{image!r} is not an image reference"
    if m.group("digest"):
        return None
    if not m.group("tag"):
        return f"{image!r} has no tag (it means latest): pin a version tag or a digest"
    if m.group("tag") == "latest":
        return f"{image!r} uses the mutable tag latest: pin a version tag or a digest"
    return None


def _image_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args)
    if spec is None:
        return
    for where, c in containers(spec):
        problem = image_problem(c.get("image"))
        if problem:
            report(f"{_where(args, where)}: image {problem}.", None)


def _secret_env(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args)
    if spec is None:
        return
    secret_volumes = {v.get("name") for v in spec.get("volumes") or [] if v.get("secret")}
    for where, c in containers(spec):
        secret_dirs = [m.get("mountPath", "").rstrip("/") + "/" for m in c.get("volumeMounts") or []
                       if m.get("name") in secret_volumes and m.get("mountPath")]
        for env in c.get("env") or []:
            name = env.get("name", "")
            if not SECRET_NAME.search(name):
                continue
            value = env.get("value")
            # REDIS_PASSWORD_FILE=/var/run/secrets/redis/password: a path into a mounted Secret.
            if name.endswith("_FILE") and isinstance(value, str) and any(value.startswith(d) for d in secret_dirs):
                continue
            source = env.get("valueFrom") or {}
            if "value" in env or "secretKeyRef" not in source:
                report(f"{_where(args, where)}: env {name} looks like a secret: take it from a Secret with "
                       "valueFrom.secretKeyRef (or, for a *_FILE variable, point it into a mounted Secret volume), "
                       "never a literal value or a ConfigMap.", None)


def _probes(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args)
    if spec is None or args.resource_type not in LONG_RUNNING:
        return
    for where, c in containers(spec, init=False):
        for probe in ("livenessProbe", "readinessProbe"):
            if not c.get(probe):
                report(f"{_where(args, where)}: add a {probe} (a long-running container without one is never restarted "
                       "when stuck, or receives traffic before it is ready).", None)


def _pull_policy(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args)
    if spec is None:
        return
    for where, c in containers(spec):
        if c.get("imagePullPolicy") not in ("Always", "IfNotPresent", "Never"):
            report(f"{_where(args, where)}: set imagePullPolicy explicitly (IfNotPresent for pinned tags).", None)


def _service_account_token(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args)
    if spec is None:
        return
    if spec.get("automountServiceAccountToken") is not False:
        report(f"{_where(args)}: set automountServiceAccountToken: false unless the pod calls the Kubernetes API "
               "(then say why in an annotation).", None)


def _policy(name: str, description: str, validate, level: EnforcementLevel) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=validate, enforcement_level=level)


POD_POLICIES = [
    _policy("pod-security-context", "Pods run as non-root with the RuntimeDefault seccomp profile, without host "
            "namespaces or hostPath volumes (Pod Security Standard restricted).", _pod_security, MANDATORY),
    _policy("container-security-context", "Every container: no privilege escalation, not privileged, read-only "
            "root filesystem, all capabilities dropped and none added.", _container_security, MANDATORY),
    _policy("container-resources", "Every container has CPU and memory requests and limits.", _resources, MANDATORY),
    _policy("container-image-pinned", "Every image is pinned by a version tag or a digest, never latest or untagged.",
            _image_pinned, MANDATORY),
    _policy("secret-env-from-secret", "An env var named like a secret comes from a Secret (secretKeyRef), never a "
            "literal or a ConfigMap.", _secret_env, MANDATORY),
    _policy("container-probes", "Long-running containers have liveness and readiness probes.", _probes, ADVISORY),
    _policy("container-image-pull-policy", "imagePullPolicy is set explicitly.", _pull_policy, ADVISORY),
    _policy("pod-service-account-token", "Pods do not mount a ServiceAccount token unless they need the API.",
            _service_account_token, ADVISORY),
]
