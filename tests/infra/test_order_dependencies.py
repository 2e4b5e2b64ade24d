"""`pulumi up` / `pulumi destroy` order: every KEDA custom resource depends on the KEDA
Helm release (its CRDs exist first; on destroy the CRs go before KEDA and its CRDs).
Namespaced objects depend on their Namespace; providers are wired per target."""

from __future__ import annotations

import pytest

KEDA_TYPES = (
    "kubernetes:keda.sh/v1alpha1:ScaledObject",
    "kubernetes:keda.sh/v1alpha1:ScaledJob",
    "kubernetes:keda.sh/v1alpha1:TriggerAuthentication",
)
RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.mark.parametrize("stack", ["local", "aks"])
@pytest.mark.parametrize("mode", ["deployment", "job"])
def test_every_keda_cr_depends_on_the_release(rendered, stack, mode):
    r = rendered(stack, workerMode=mode)
    (release_urn,) = [x.urn for x in r.by_type(RELEASE) if x.inputs["chart"] == "keda"]
    keda_crs = [x for x in r.resources if x.type.startswith("kubernetes:keda.sh/")]
    assert {x.type for x in keda_crs} == {KEDA_TYPES[0] if mode == "deployment" else KEDA_TYPES[1], KEDA_TYPES[2]}
    for cr in keda_crs:
        # explicit depends_on, not just an incidental input reference
        assert release_urn in cr.explicit_depends_on, cr.name


def test_scaled_object_depends_on_its_target_and_auth(rendered):
    r = rendered("local")
    so = r.by_type(KEDA_TYPES[0])[0]
    deployment = [x for x in r.resources if x.type == "kubernetes:apps/v1:Deployment" and x.inputs["metadata"]["name"] == "worker"][0]
    auth = r.by_type(KEDA_TYPES[2])[0]
    assert deployment.urn in so.depends_on
    assert auth.urn in so.depends_on


def test_release_is_in_its_own_namespace_created_first(rendered):
    r = rendered("local")
    (release,) = [x for x in r.by_type(RELEASE) if x.inputs["chart"] == "keda"]
    keda_ns = [x for x in r.resources if x.type == "kubernetes:core/v1:Namespace" and x.inputs["metadata"]["name"] == "keda"][0]
    assert release.inputs["namespace"] == "keda"
    assert keda_ns.urn in release.depends_on


@pytest.mark.parametrize("stack", ["local", "aks"])
def test_namespaced_objects_depend_on_the_app_namespace(rendered, stack):
    r = rendered(stack)
    app_ns = [x for x in r.resources if x.type == "kubernetes:core/v1:Namespace" and x.inputs["metadata"]["name"] == "platform"][0]
    for res in r.k8s_resources:
        if res.inputs["metadata"].get("namespace") == "platform":
            assert app_ns.urn in res.depends_on, f"{res.type} {res.name}"


def test_in_cluster_redis_waits_for_its_secret(rendered):
    r = rendered("local")
    sts = r.by_type("kubernetes:apps/v1:StatefulSet")[0]
    server_secret = [x for x in r.resources if x.type == "kubernetes:core/v1:Secret" and x.inputs["metadata"]["name"] == "redis-server-auth"][0]
    assert server_secret.urn in sts.depends_on


@pytest.mark.parametrize("stack", ["local", "aks"])
def test_every_k8s_object_uses_the_cluster_provider(rendered, stack):
    r = rendered(stack)
    (provider,) = r.by_type("pulumi:providers:kubernetes")
    for res in r.k8s_resources + r.by_type(RELEASE):
        assert res.provider.startswith(provider.urn + "::"), f"{res.type} {res.name}: {res.provider}"


@pytest.mark.parametrize("principal_type", ["User", "ServicePrincipal", "Group"])
def test_aks_deployer_role_is_granted_before_the_cluster_exists(rendered, principal_type):
    """The deployer's cluster-admin role is assigned on the resource group before the cluster
    is created (AKS takes minutes: the assignment has propagated when the provider first
    talks to the API server), with the deployer's principalType, and the provider waits too."""
    r = rendered("aks", deployerPrincipalType=principal_type)
    (provider,) = r.by_type("pulumi:providers:kubernetes")
    (rg,) = r.by_type("azure-native:resources:ResourceGroup")
    (aks,) = r.by_type("azure-native:containerservice:ManagedCluster")
    deployer = [x for x in r.resources if x.name == "aks-deployer-admin"][0]
    assert deployer.inputs["roleDefinitionId"].endswith("/b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b")
    assert deployer.inputs["principalType"] == principal_type
    assert deployer.inputs["principalId"] == "44444444-4444-4444-4444-444444444444"  # getClientConfig objectId
    assert deployer.inputs["scope"] == f"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{rg.outputs['name']}"
    assert rg.urn in deployer.depends_on
    assert deployer.urn in aks.explicit_depends_on  # registered, and created, before the cluster
    assert deployer.order < aks.order
    assert deployer.urn in provider.explicit_depends_on
    acr_pull = [x for x in r.resources if x.name == "aks-acr-pull"][0]
    assert acr_pull.urn in provider.explicit_depends_on
    assert acr_pull.inputs["principalType"] == "ServicePrincipal"  # the kubelet identity, always


@pytest.mark.parametrize("stack", ["local", "aks"])
def test_keda_waits_for_the_app_namespace(rendered, stack):
    """watchNamespace comes from the Namespace resource: the chart puts a RoleBinding in it."""
    r = rendered(stack)
    (release,) = [x for x in r.by_type(RELEASE) if x.inputs["chart"] == "keda"]
    app_ns = [x for x in r.resources if x.type == "kubernetes:core/v1:Namespace" and x.inputs["metadata"]["name"] == "platform"][0]
    assert release.inputs["values"]["watchNamespace"] == "platform"
    assert app_ns.urn in release.depends_on
    assert app_ns.urn in release.property_dependencies.get("values", [])


def test_components_parent_their_children(rendered):
    """Every real resource lives under one of our components (parent=self), every component
    under the one Platform, and the Platform hangs off the stack: the tree `pulumi up` shows,
    and provider inheritance."""
    r = rendered("local")
    by_urn = {x.urn: x for x in r.resources}
    platforms = r.by_type("redis-keda-platform:index:Platform")
    assert len(platforms) == 1 and "pulumi:pulumi:Stack" in platforms[0].parent
    for res in r.resources:
        parent = by_urn.get(res.parent)
        if res.type == "redis-keda-platform:index:Platform":
            continue
        if res.type.startswith("redis-keda-platform:index:"):
            assert parent is not None and parent.type.startswith("redis-keda-platform:index:"), res.name
        else:
            assert parent is not None and parent.type.startswith("redis-keda-platform:index:"), f"{res.type} {res.name}"
