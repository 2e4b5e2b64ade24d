"""Keyless apps on Azure Managed Redis (``redisEntraAuth``, on by default): each app
ServiceAccount gets a workload identity federated with the cluster's OIDC issuer and let into
the database; the pods sign in with its Entra token and never mount or name the key, which
only KEDA and redis_exporter still read. Off, on Azure Cache for Redis and on kind: the key."""

from __future__ import annotations

import pytest

from components.workload_identity import ACCESS_POLICY, TOKEN_EXCHANGE_AUDIENCE
from tests.infra.validation import manifests

APPS = {"worker": "worker", "producer": "producer", "cache-api": "cache-api", "worker-sweeper": "worker"}
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
FEDERATION = "azure-native:managedidentity:FederatedIdentityCredential"
ASSIGNMENT = "azure-native:redisenterprise:AccessPolicyAssignment"


def _pods(r):
    """Deployment/ScaledJob name -> (pod template, its first container)."""
    return {t.owner["metadata"]["name"]: t for t in manifests.pod_templates(r.k8s_objects)}


@pytest.mark.parametrize("mode", ["deployment", "job"])
def test_each_app_service_account_has_its_own_identity_let_into_redis(rendered, mode):
    r = rendered("aks", workerMode=mode)
    [cluster] = [res for res in r.resources if res.type == "azure-native:containerservice:ManagedCluster"]
    [database] = [res for res in r.resources if res.type == "azure-native:redisenterprise:Database"]
    identities = {res.name.removeprefix("redis-identity-"): res for res in r.resources if res.type == IDENTITY}
    assert set(identities) == {"worker", "producer", "cache-api"}
    federations = {res.inputs["subject"]: res.inputs for res in r.resources if res.type == FEDERATION}
    assert set(federations) == {f"system:serviceaccount:platform:{sa}" for sa in identities}
    for sa, fed in federations.items():
        assert fed["issuer"] == cluster.outputs["oidcIssuerProfile"]["issuerURL"]
        assert fed["audiences"] == [TOKEN_EXCHANGE_AUDIENCE]
        assert fed["resourceName"] == identities[sa.rsplit(":", 1)[1]].outputs["name"]
    assignments = [res for res in r.resources if res.type == ASSIGNMENT]
    assert sorted(a.inputs["user"]["objectId"] for a in assignments) == \
        sorted(i.outputs["principalId"] for i in identities.values())
    for a in assignments:
        assert a.inputs["accessPolicyName"] == ACCESS_POLICY
        assert (a.inputs["clusterName"], a.inputs["databaseName"]) == (database.inputs["clusterName"], "default")
    # one operation at a time on the Redis cluster: the assignments are chained
    chained = [a for a in assignments if any(d in {b.urn for b in assignments} for d in a.depends_on)]
    assert len(chained) == len(assignments) - 1
    accounts = {o["metadata"]["name"]: o for o in r.k8s("ServiceAccount")}
    for sa, identity in identities.items():
        assert accounts[sa]["metadata"]["annotations"] == {
            "azure.workload.identity/client-id": identity.outputs["clientId"]}


@pytest.mark.parametrize("mode", ["deployment", "job"])
def test_keyless_pods_sign_in_with_entra_and_never_see_the_key(rendered, mode):
    r = rendered("aks", workerMode=mode)
    pods = _pods(r)
    apps = {name: t for name, t in pods.items() if name in APPS}
    assert len(apps) == (3 if mode == "deployment" else 4)  # job mode: the ScaledJob "worker" and the sweeper
    for name, t in apps.items():
        (c,) = [c for _, c in t.containers()]
        env = manifests.container_env(c)
        assert env["REDIS_SIGN_IN"] == {"name": "REDIS_SIGN_IN", "value": "entra"}, name
        assert "REDIS_PASSWORD_FILE" not in env and "REDIS_PASSWORD" not in env, name
        assert "redis-auth" not in str(t.spec), name  # neither mounted nor named
        assert t.labels["azure.workload.identity/use"] == "true", name
        assert t.spec["serviceAccountName"] == APPS[name]
        assert t.spec["automountServiceAccountToken"] is False  # the webhook projects its own token
    # the key's readers: KEDA's TriggerAuthentication and redis_exporter only
    readers = {name for name, t in pods.items() if "redis-auth" in str(t.spec)}
    assert readers == {"redis-exporter"}
    [ta] = r.k8s("TriggerAuthentication")
    assert ta["spec"]["secretTargetRef"] == [{"parameter": "password", "name": "redis-auth", "key": "password"}]


@pytest.mark.parametrize("overrides", [{"redisEntraAuth": "false"}, {"azureRedis": "classic"}],
                         ids=["off", "classic"])
def test_the_key_elsewhere(rendered, overrides):
    r = rendered("aks", **overrides)
    assert not [res for res in r.resources if res.type in (IDENTITY, FEDERATION, ASSIGNMENT)]
    for name, t in _pods(r).items():
        if name in APPS:
            (c,) = [c for _, c in t.containers()]
            assert "REDIS_SIGN_IN" not in manifests.container_env(c)
            assert manifests.password_secret_ref(t.spec, c) == {"name": "redis-auth", "key": "password"}
            assert "azure.workload.identity/use" not in t.labels
    assert "entra-token-egress" not in {p["metadata"]["name"] for p in r.k8s("NetworkPolicy")}


def test_kind_never_gets_identities(rendered):
    r = rendered("local")
    assert not [res for res in r.resources if res.type.startswith("azure-native:")]
    assert all("REDIS_SIGN_IN" not in str(t.spec) for t in _pods(r).values())
