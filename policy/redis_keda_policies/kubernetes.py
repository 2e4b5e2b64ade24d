"""Kubernetes policies beyond pods: KEDA authentication only through TriggerAuthentication,
no secrets in ConfigMaps, ClusterIP Services, explicit namespaces, and a default-deny
NetworkPolicy in every namespace the stack runs pods in."""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from redis_keda_policies.pods import POD_SPEC_PATHS

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

KEDA_SCALERS = ("kubernetes:keda.sh/v1alpha1:ScaledObject", "kubernetes:keda.sh/v1alpha1:ScaledJob")
#: Trigger metadata keys that carry (or name the env var of) a credential.
SECRET_METADATA = re.compile(r"password|passwd|secret|token|apikey|api_key|accesskey|sharedkey|connection|credential|"
                             r"privatekey|sasl", re.IGNORECASE)
#: Scalers that authenticate (KEDA's names): they must name a TriggerAuthentication.
AUTH_SCALERS = re.compile(r"^(redis|redis-cluster|redis-sentinel|redis-streams|redis-cluster-streams|"
                          r"redis-sentinel-streams|rabbitmq|kafka|postgresql|mysql|mssql|mongodb|azure-.*|aws-.*|gcp-.*)$")
SECRET_KEY = re.compile(r"password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential",
                        re.IGNORECASE)
#: Kinds that are not namespaced (everything else needs an explicit namespace).
CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "StorageClass", "PriorityClass", "IngressClass", "RuntimeClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "APIService", "ClusterTriggerAuthentication", "CSIDriver", "VolumeAttachment",
}


def _where(args: Any) -> str:
    return f"{args.resource_type.rsplit(':', 1)[-1]} {args.name}"


def _keda_triggers(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in KEDA_SCALERS:
        return
    for i, trigger in enumerate((args.props.get("spec") or {}).get("triggers") or []):
        label = f"{_where(args)} trigger {trigger.get('name') or i} ({trigger.get('type')})"
        for key in (trigger.get("metadata") or {}):
            if SECRET_METADATA.search(key):
                report(f"{label}: metadata key {key!r} carries a credential: remove it and authenticate through a "
                       "TriggerAuthentication (secretTargetRef to a Secret) named in authenticationRef.", None)
        if AUTH_SCALERS.match(str(trigger.get("type", ""))) and not (trigger.get("authenticationRef") or {}).get("name"):
            report(f"{label}: set authenticationRef to a TriggerAuthentication whose secretTargetRef reads the "
                   "password from a Secret.", None)


def _configmap(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:core/v1:ConfigMap":
        return
    for field in ("data", "binaryData"):
        for key in (args.props.get(field) or {}):
            if SECRET_KEY.search(key):
                report(f"{_where(args)}: key {key!r} looks like a secret: put it in a Secret, not a ConfigMap.", None)


def _service(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "kubernetes:core/v1:Service":
        return
    spec = args.props.get("spec") or {}
    if spec.get("type", "ClusterIP") not in ("ClusterIP",):
        report(f"{_where(args)}: type {spec.get('type')} exposes it outside the cluster: use ClusterIP "
               "(kubectl port-forward, or an Ingress you secure) unless that exposure is intended.", None)
    if spec.get("externalIPs"):
        report(f"{_where(args)}: externalIPs exposes it on node addresses: remove them.", None)


def _namespace(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:") or args.resource_type.startswith("kubernetes:helm.sh"):
        return
    kind = args.resource_type.rsplit(":", 1)[-1]
    if kind in CLUSTER_SCOPED or kind.endswith("List") or args.resource_type.startswith("pulumi:providers"):
        return
    if "metadata" not in args.props and "kind" not in args.props:
        return  # not a Kubernetes object (e.g. a yaml/helm group)
    ns = (args.props.get("metadata") or {}).get("namespace")
    if not ns or ns == "default":
        report(f"{_where(args)}: set metadata.namespace to your team's namespace (not default).", None)


def _default_deny(args: StackValidationArgs, report: ReportViolation) -> None:
    pods_in: dict[str, str] = {}
    denied: set[str] = set()
    for res in args.resources:
        meta = res.props.get("metadata") or {}
        if res.resource_type in POD_SPEC_PATHS:
            ns = meta.get("namespace") or "default"
            pods_in[ns] = min(pods_in.get(ns, res.name), res.name)
        if res.resource_type == "kubernetes:networking.k8s.io/v1:NetworkPolicy":
            spec = res.props.get("spec") or {}
            selects_all = not (spec.get("podSelector") or {}).get("matchLabels") and \
                not (spec.get("podSelector") or {}).get("matchExpressions")
            types = set(spec.get("policyTypes") or [])
            if selects_all and {"Ingress", "Egress"} <= types and not spec.get("ingress") and not spec.get("egress"):
                denied.add(meta.get("namespace") or "default")
    for ns, example in sorted(pods_in.items()):
        if ns not in denied:
            report(f"namespace {ns} runs pods ({example}, ...) without a default-deny NetworkPolicy: add one with "
                   "podSelector: {}, policyTypes [Ingress, Egress] and no rules, then allow each flow you need.", None)


KUBERNETES_POLICIES = [
    ResourceValidationPolicy(
        name="keda-auth-via-trigger-authentication",
        description="KEDA triggers carry no credential in metadata; authenticating scalers name a TriggerAuthentication.",
        validate=_keda_triggers, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="configmap-no-secrets", description="No secret-looking key in a ConfigMap.",
        validate=_configmap, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="service-cluster-ip", description="Services are ClusterIP, without externalIPs.",
        validate=_service, enforcement_level=ADVISORY),
    ResourceValidationPolicy(
        name="namespace-explicit", description="Namespaced Kubernetes objects name a namespace other than default.",
        validate=_namespace, enforcement_level=ADVISORY),
    StackValidationPolicy(
        name="namespace-default-deny",
        description="Every namespace the stack runs pods in has a default-deny NetworkPolicy.",
        validate=_default_deny, enforcement_level=MANDATORY),
]
