"""Keyless Redis for the apps on Azure Managed Redis: one user-assigned identity per app
ServiceAccount, federated with the cluster's OIDC issuer (Kubernetes workload identity), and
an access policy assignment that lets it into the Redis database with an Entra token.

The apps then sign in as the identity's object ID with a token they renew themselves (the
``REDIS_SIGN_IN=entra`` mode of apps/common); no app pod needs the access key. KEDA's redis
scaler (and redis_exporter) cannot use Entra yet, so the key stays, for them alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native
from pulumi import Output, ResourceOptions

#: The audience Kubernetes workload identity exchanges its token for.
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
#: Azure Managed Redis has one built-in data access policy: full data access.
ACCESS_POLICY = "default"
#: The ServiceAccount annotation the workload identity webhook reads.
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
#: The pod label that makes the webhook inject the token file and AZURE_* variables.
USE_LABEL = "azure.workload.identity/use"


@dataclass(frozen=True, kw_only=True)
class RedisWorkloadIdentitiesArgs:
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    """The cluster's OIDC issuer (``oidcIssuerProfile.issuerURL``)."""
    namespace: str
    """The apps' namespace (plain: it is part of each federated subject)."""
    service_accounts: Sequence[str]
    """The ServiceAccounts that get an identity (one each)."""
    redis_cluster_name: pulumi.Input[str]
    redis_database_name: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.service_accounts or len(set(self.service_accounts)) != len(self.service_accounts):
            raise ValueError("RedisWorkloadIdentitiesArgs.service_accounts: give each ServiceAccount once")


class RedisWorkloadIdentities(pulumi.ComponentResource):
    """Per ServiceAccount: UserAssignedIdentity + FederatedIdentityCredential + AccessPolicyAssignment."""

    client_ids: dict[str, Output[str]]
    """ServiceAccount -> the identity's client ID (the ServiceAccount's annotation)."""
    object_ids: dict[str, Output[str]]
    """ServiceAccount -> the identity's object ID (the Redis user name it signs in as)."""

    def __init__(self, name: str, args: RedisWorkloadIdentitiesArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:RedisWorkloadIdentities", name, None, opts)
        mi, re_ = azure_native.managedidentity, azure_native.redisenterprise
        self.client_ids, self.object_ids = {}, {}
        previous: list[pulumi.Resource] = []
        for sa in args.service_accounts:
            identity = mi.UserAssignedIdentity(
                f"{name}-{sa}", resource_group_name=args.resource_group_name, location=args.location,
                tags=dict(args.tags), opts=ResourceOptions(parent=self))
            mi.FederatedIdentityCredential(
                f"{name}-{sa}-federation",
                resource_group_name=args.resource_group_name,
                resource_name_=identity.name,
                issuer=args.oidc_issuer_url,
                subject=f"system:serviceaccount:{args.namespace}:{sa}",
                audiences=[TOKEN_EXCHANGE_AUDIENCE],
                opts=ResourceOptions(parent=self))
            # One operation at a time on a Redis cluster: the assignments go one after another.
            assignment = re_.AccessPolicyAssignment(
                f"{name}-{sa}-redis",
                resource_group_name=args.resource_group_name,
                cluster_name=args.redis_cluster_name,
                database_name=args.redis_database_name,
                access_policy_assignment_name=re.sub(r"[^A-Za-z0-9]", "", sa),
                access_policy_name=ACCESS_POLICY,
                user=re_.AccessPolicyAssignmentPropertiesUserArgs(object_id=identity.principal_id),
                opts=ResourceOptions(parent=self, depends_on=list(previous)))
            previous = [assignment]
            self.client_ids[sa] = identity.client_id
            self.object_ids[sa] = identity.principal_id
        self.register_outputs({"clientIds": self.client_ids, "objectIds": self.object_ids})
