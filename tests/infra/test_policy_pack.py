"""The policy pack (policy/), proven offline.

- Every policy's validation runs, called directly as pulumi-policy's own tests do, over
  every resource of every rendered variant (props as the Analyze RPC hands them: the
  resource's inputs, deserialized and wrapped in pulumi-policy's unknown-checking proxy),
  and reports nothing.
- For each policy, a mutated resource makes exactly that policy fire, with a message that
  says what to change.
- The pack's own ``__main__.py`` starts as Pulumi starts it and answers over gRPC: its
  policies with their enforcement levels, and an Analyze of a mutated Deployment.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties  # noqa: E402
from pulumi_policy.proxy import unknown_checking_proxy  # noqa: E402
from redis_keda_policies import PACK_NAME, POLICIES  # noqa: E402

from tests.infra.plugin_process import plugin_channel  # noqa: E402
from tests.infra.validation.render import BY_ID, VARIANT_IDS  # noqa: E402

RESOURCE_POLICIES = [p for p in POLICIES if isinstance(p, ResourceValidationPolicy)]
STACK_POLICIES = [p for p in POLICIES if isinstance(p, StackValidationPolicy)]
BY_NAME = {p.name: p for p in POLICIES}


def _props(inputs: dict[str, Any]) -> Any:
    return unknown_checking_proxy(deserialize_properties(json.loads(json.dumps(inputs))))


def _opts() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def resource_violations(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, list[str]]:
    """policy name -> messages, for one resource."""
    out: dict[str, list[str]] = {}
    for policy in RESOURCE_POLICIES:
        messages: list[str] = []
        args = ResourceValidationArgs(type_, _props(inputs), f"urn:test::{name}", name, _opts(), None)
        policy.validate(args, lambda message, urn=None, messages=messages: messages.append(message))
        if messages:
            out[policy.name] = messages
    return out


def stack_violations(resources: list[tuple[str, str, dict[str, Any]]]) -> dict[str, list[str]]:
    policy_resources = [PolicyResource(t, _props(i), f"urn:test::{n}", n, _opts(), None, None, [], {})
                        for t, n, i in resources]
    out: dict[str, list[str]] = {}
    for policy in STACK_POLICIES:
        messages: list[str] = []
        policy.validate(StackValidationArgs(policy_resources),
                        lambda message, urn=None, messages=messages: messages.append(message))
        if messages:
            out[policy.name] = messages
    return out


def _custom(result) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.type, r.name, r.inputs) for r in result.resources if r.custom]


def test_the_pack_has_mandatory_and_advisory_policies_with_unique_names():
    assert len(BY_NAME) == len(POLICIES) >= 15
    levels = {p.enforcement_level for p in POLICIES}
    assert levels == {EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY}
    assert all(p.description for p in POLICIES)


@pytest.mark.parametrize("variant_id", VARIANT_IDS)
def test_every_rendered_resource_passes_every_policy(variant_id, rendered):
    variant = BY_ID[variant_id]
    result = rendered(variant.stack, **dict(variant.settings))
    resources = _custom(result)
    assert len(resources) > 40
    found = {f"{t} {n}": v for t, n, i in resources if (v := resource_violations(t, n, i))}
    assert found == {}
    assert stack_violations(resources) == {}


# -- each policy fires on its own mutation -------------------------------------------------
def _pod(spec_root: dict[str, Any], kind: str) -> dict[str, Any]:
    path = {"ScaledJob": ("spec", "jobTargetRef", "template", "spec")}.get(kind, ("spec", "template", "spec"))
    node = spec_root
    for key in path:
        node = node[key]
    return node


def _first_container(inputs: dict[str, Any], kind: str = "Deployment") -> dict[str, Any]:
    return _pod(inputs, kind)["containers"][0]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(inputs: dict[str, Any]) -> None:
        node = inputs
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        if value is _DELETE:
            node.pop(keys[-1], None)
        else:
            node[keys[-1]] = value
    return mutate


_DELETE = object()

# (policy, variant, resource type, resource name, mutation, words the message must say)
MUTATIONS = [
    ("pod-security-context", "local-deployment", "kubernetes:apps/v1:Deployment", "producer-deployment",
     lambda i: _pod(i, "Deployment").update(hostNetwork=True), "hostNetwork"),
    ("pod-security-context", "local-job", "kubernetes:keda.sh/v1alpha1:ScaledJob", "worker-scaledjob",
     lambda i: [_pod(i, "ScaledJob")["securityContext"].pop("runAsNonRoot"),
                _first_container(i, "ScaledJob").get("securityContext", {}).pop("runAsNonRoot", None)], "runAsNonRoot: true"),
    ("container-security-context", "local-deployment", "kubernetes:apps/v1:StatefulSet", "redis-sts",
     lambda i: _first_container(i)["securityContext"].update(allowPrivilegeEscalation=True), "allowPrivilegeEscalation: false"),
    ("container-security-context", "aks-deployment", "kubernetes:apps/v1:Deployment", "cache-api-deployment",
     lambda i: _first_container(i)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "add none"),
    ("container-resources", "aks-job", "kubernetes:apps/v1:Deployment", "worker-sweeper",
     lambda i: _first_container(i)["resources"].pop("limits"), "limits.cpu, limits.memory"),
    ("container-image-pinned", "local-deployment", "kubernetes:apps/v1:Deployment", "worker-deployment",
     lambda i: _first_container(i).update(image="redis-keda-platform/worker:latest"), "mutable tag latest"),
    ("container-image-pinned", "local-deployment", "kubernetes:apps/v1:Deployment", "worker-deployment",
     lambda i: _first_container(i).update(image="redis-keda-platform/worker"), "no tag"),
    ("secret-env-from-secret", "local-deployment", "kubernetes:apps/v1:Deployment", "cache-api-deployment",
     lambda i: _first_container(i)["env"].append({"name": "API_TOKEN", "value": "hunter2"}), "secretKeyRef"),
    ("secret-env-from-secret", "local-deployment", "kubernetes:apps/v1:Deployment", "cache-api-deployment",
     lambda i: _first_container(i)["env"].append({"name": "API_TOKEN_FILE", "value": "/tmp/token"}),
     "point it into a mounted Secret volume"),
    ("container-probes", "local-deployment", "kubernetes:apps/v1:Deployment", "producer-deployment",
     lambda i: _first_container(i).pop("readinessProbe"), "readinessProbe"),
    ("container-image-pull-policy", "aks-deployment", "kubernetes:apps/v1:Deployment", "producer-deployment",
     lambda i: _first_container(i).pop("imagePullPolicy"), "imagePullPolicy"),
    ("pod-service-account-token", "local-deployment", "kubernetes:apps/v1:Deployment", "producer-deployment",
     lambda i: _pod(i, "Deployment").pop("automountServiceAccountToken"), "automountServiceAccountToken: false"),
    ("keda-auth-via-trigger-authentication", "local-deployment", "kubernetes:keda.sh/v1alpha1:ScaledObject",
     "worker-scaledobject", lambda i: i["spec"]["triggers"][0]["metadata"].update(password="s3cret"), "TriggerAuthentication"),
    ("keda-auth-via-trigger-authentication", "aks-job", "kubernetes:keda.sh/v1alpha1:ScaledJob", "worker-scaledjob",
     lambda i: i["spec"]["triggers"][0].pop("authenticationRef"), "authenticationRef"),
    ("configmap-no-secrets", "local-deployment", "kubernetes:core/v1:ConfigMap", "monitoring-dashboard",
     lambda i: i["data"].update({"grafana-password": "x"}), "put it in a Secret"),
    ("service-cluster-ip", "local-deployment", "kubernetes:core/v1:Service", "cache-api-svc",
     _set("spec.type", "LoadBalancer"), "ClusterIP"),
    ("namespace-explicit", "local-deployment", "kubernetes:core/v1:Service", "cache-api-svc",
     _set("metadata.namespace", _DELETE), "metadata.namespace"),
    ("azure-redis-tls", "aks-deployment-classic", "azure-native:redis:Redis", "redis-cache",
     _set("enableNonSslPort", True), "enableNonSslPort: false"),
    ("azure-redis-tls", "aks-deployment-classic", "azure-native:redis:Redis", "redis-cache",
     _set("minimumTlsVersion", "1.0"), 'minimumTlsVersion: "1.2"'),
    ("azure-redis-tls", "aks-deployment", "azure-native:redisenterprise:RedisEnterprise", "redis-cluster",
     _set("minimumTlsVersion", _DELETE), 'minimumTlsVersion: "1.2"'),
    ("azure-redis-tls", "aks-deployment", "azure-native:redisenterprise:Database", "redis-db",
     _set("clientProtocol", "Plaintext"), "clientProtocol: Encrypted"),
    ("azure-redis-public-network-access", "aks-deployment", "azure-native:redisenterprise:RedisEnterprise",
     "redis-cluster", _set("publicNetworkAccess", "Enabled"), "publicNetworkAccess: Disabled"),
    ("azure-redis-public-network-access", "aks-deployment-classic", "azure-native:redis:Redis", "redis-cache",
     _set("publicNetworkAccess", _DELETE), "unset means Enabled"),
    ("azure-managed-redis-broker", "aks-deployment", "azure-native:redisenterprise:Database", "redis-db",
     _set("clusteringPolicy", "OSSCluster"), "NoCluster"),
    ("aks-access", "aks-job", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("disableLocalAccounts", False), "disableLocalAccounts: true"),
    ("aks-access", "aks-job", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("enableRBAC", _DELETE), "enableRBAC: true"),
    ("aks-network-policy", "aks-deployment", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("networkProfile.networkPolicy", "none"), "networkProfile.networkPolicy"),
    ("aks-api-server-access", "aks-deployment", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("apiServerAccessProfile.authorizedIPRanges", ["0.0.0.0/0"]), "not 0.0.0.0/0"),
    ("aks-api-server-access", "aks-job", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("apiServerAccessProfile", _DELETE), "no ranges"),
    ("aks-api-server-access", "aks-deployment", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("apiServerAccessProfile.disableRunCommand", False), "disableRunCommand: true"),
    ("aks-add-ons", "aks-deployment", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("addonProfiles.azurepolicy.enabled", False), "addonProfiles.azurepolicy"),
    ("aks-add-ons", "aks-deployment-classic", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("addonProfiles.omsagent.config.useAADAuth", "false"), 'useAADAuth: "true"'),
    ("aks-operations", "aks-deployment", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("sku.tier", "Free"), "Free tier has no API server SLA"),
    ("aks-operations", "aks-deployment", "azure-native:containerservice:ManagedCluster", "aks-aks",
     _set("securityProfile.imageCleaner", _DELETE), "imageCleaner.enabled: true"),
    ("aks-operations", "aks-job", "azure-native:containerservice:ManagedCluster", "aks-aks",
     lambda i: i["agentPoolProfiles"][1].pop("availabilityZones"), "none on user"),
    ("log-analytics-entra-only", "aks-deployment", "azure-native:operationalinsights:Workspace", "aks-audit-workspace",
     _set("features.disableLocalAuth", False), "disableLocalAuth: true"),
    ("acr-admin-user-disabled", "aks-deployment", "azure-native:containerregistry:Registry", "aks-acr",
     _set("adminUserEnabled", True), "adminUserEnabled: false"),
]

# (stack policy, variant, what to remove or change, words the message must say)
STACK_MUTATIONS = [
    ("azure-audit-trail", "aks-deployment",
     lambda rs: [r for r in rs if r[1] != "aks-aks-diagnostics"], "ManagedCluster aks-aks: add a diagnostic setting"),
    ("azure-audit-trail", "aks-deployment-classic",
     lambda rs: [r for r in rs if r[1] != "redis-cache-diagnostics"], "MSEntraAuthenticationAuditLog"),
    ("azure-audit-trail", "aks-deployment",
     lambda rs: [(t, n, {**i, "logs": [lg for lg in i["logs"] if lg["category"] != "guard"]})
                 if n == "aks-aks-diagnostics" else (t, n, i) for t, n, i in rs], "kube-audit-admin, guard"),
    ("aks-maintenance-windows", "aks-job",
     lambda rs: [r for r in rs if r[1] != "aks-aksManagedNodeOSUpgradeSchedule"], "aksManagedNodeOSUpgradeSchedule"),
]


def test_every_policy_has_a_mutation_that_fires_it():
    assert {m[0] for m in MUTATIONS} | {m[0] for m in STACK_MUTATIONS} | {"namespace-default-deny"} == set(BY_NAME)


@pytest.mark.parametrize("policy, variant_id, mutate, says", STACK_MUTATIONS,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(STACK_MUTATIONS)])
def test_a_mutated_stack_fires_exactly_its_stack_policy(policy, variant_id, mutate, says, rendered):
    variant = BY_ID[variant_id]
    resources = mutate(copy.deepcopy(_custom(rendered(variant.stack, **dict(variant.settings)))))
    violations = stack_violations(resources)
    assert list(violations) == [policy], violations
    assert len(violations[policy]) == 1 and says in violations[policy][0], violations[policy]


@pytest.mark.parametrize("policy, variant_id, type_, name, mutate, says", MUTATIONS,
                         ids=[f"{m[0]}-{i}" for i, m in enumerate(MUTATIONS)])
def test_a_mutated_resource_fires_exactly_its_policy(policy, variant_id, type_, name, mutate, says, rendered):
    variant = BY_ID[variant_id]
    result = rendered(variant.stack, **dict(variant.settings))
    [resource] = [r for r in result.resources if r.type == type_ and r.name == name]
    inputs = copy.deepcopy(resource.inputs)
    mutate(inputs)
    violations = resource_violations(type_, name, inputs)
    assert list(violations) == [policy], violations
    assert len(violations[policy]) == 1 and says in violations[policy][0], violations[policy]
    assert name in violations[policy][0]


def test_a_namespace_without_default_deny_fires_the_stack_policy(rendered):
    resources = _custom(rendered("local"))
    without = [r for r in resources if not (r[0].endswith(":NetworkPolicy") and r[1] == "netpol-default-deny")]
    assert stack_violations(without) == {"namespace-default-deny": [
        "namespace platform runs pods (cache-api-deployment, ...) without a default-deny NetworkPolicy: add one with "
        "podSelector: {}, policyTypes [Ingress, Egress] and no rules, then allow each flow you need."]}
    # A team's Deployment in a namespace of its own, without a policy there:
    team = copy.deepcopy(next(r for r in resources if r[1] == "producer-deployment"))
    team[2]["metadata"]["namespace"] = "team-a"
    assert list(stack_violations([*resources, ("kubernetes:apps/v1:Deployment", "team-app", team[2])])) == \
        ["namespace-default-deny"]


# -- the pack as Pulumi runs it -------------------------------------------------------------
@pytest.fixture
def running_pack():
    """``policy/__main__.py`` in its own process (cwd = the pack, as the Python language
    host runs a policy pack); it prints its gRPC port first."""
    with plugin_channel(["__main__.py"], cwd=POLICY_DIR, ready_timeout=20) as channel:
        yield analyzer_pb2_grpc.AnalyzerStub(channel)


def test_the_pack_serves_its_policies_and_analyzes_over_grpc(running_pack, rendered):
    info = running_pack.GetAnalyzerInfo(empty_pb2.Empty(), timeout=20)
    assert info.name == PACK_NAME
    served = {p.name: p.enforcementLevel for p in info.policies}
    assert served == {p.name: (analyzer_pb2.MANDATORY if p.enforcement_level == EnforcementLevel.MANDATORY
                               else analyzer_pb2.ADVISORY) for p in POLICIES}

    [deployment] = [r for r in rendered("local").resources if r.name == "worker-deployment"]
    ok = running_pack.Analyze(_request(deployment.type, deployment.name, deployment.inputs), timeout=20)
    assert list(ok.diagnostics) == []
    broken = copy.deepcopy(deployment.inputs)
    _first_container(broken).update(image="redis-keda-platform/worker:latest")
    bad = running_pack.Analyze(_request(deployment.type, deployment.name, broken), timeout=20)
    assert [(d.policyName, d.enforcementLevel) for d in bad.diagnostics] == \
        [("container-image-pinned", analyzer_pb2.MANDATORY)]
    assert "pin a version tag or a digest" in bad.diagnostics[0].message


def _request(type_: str, name: str, inputs: dict[str, Any]) -> analyzer_pb2.AnalyzeRequest:
    props = struct_pb2.Struct()
    json_format.ParseDict(json.loads(json.dumps(inputs)), props)
    return analyzer_pb2.AnalyzeRequest(type=type_, name=name, urn=f"urn:pulumi:test::p::{type_}::{name}",
                                       properties=props)


def test_the_pack_manifest_and_the_e2e_job_use_it():
    import yaml

    manifest = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    pins = [line.strip() for line in (POLICY_DIR / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert "pulumi-policy==1.21.0" in pins and all("==" in p for p in pins), pins
    e2e = (ROOT / "scripts" / "e2e_kind.sh").read_text()
    assert "pulumi preview --stack \"$STACK\" --policy-pack policy" in e2e
    assert "--policy-pack policy" in e2e.split("pulumi up --stack")[1].splitlines()[0]
