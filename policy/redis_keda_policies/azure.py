"""Azure policies: Redis (Azure Cache for Redis and Azure Managed Redis) TLS only, TLS >= 1.2,
off the internet; AKS with Kubernetes RBAC, no local accounts, and an engine enforcing
NetworkPolicies. Resource types and property names are azure-native v3's."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

CACHE_REDIS = "azure-native:redis:Redis"
MANAGED_REDIS = "azure-native:redisenterprise:RedisEnterprise"
MANAGED_REDIS_DB = "azure-native:redisenterprise:Database"
AKS = "azure-native:containerservice:ManagedCluster"
TLS_OK = ("1.2", "1.3")
NETWORK_POLICY_ENGINES = ("azure", "calico", "cilium")


def _where(args: ResourceValidationArgs) -> str:
    return f"{args.resource_type.rsplit(':', 1)[-1]} {args.name}"


def _redis_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == CACHE_REDIS:
        if args.props.get("enableNonSslPort") is True:
            report(f"{_where(args)}: set enableNonSslPort: false (clients use TLS on 6380 only).", None)
        if args.props.get("minimumTlsVersion") not in TLS_OK:
            report(f"{_where(args)}: set minimumTlsVersion: \"1.2\" (got {args.props.get('minimumTlsVersion')!r}).", None)
    elif args.resource_type == MANAGED_REDIS:
        if args.props.get("minimumTlsVersion") not in TLS_OK:
            report(f"{_where(args)}: set minimumTlsVersion: \"1.2\" (got {args.props.get('minimumTlsVersion')!r}).", None)
    elif args.resource_type == MANAGED_REDIS_DB:
        if args.props.get("clientProtocol") != "Encrypted":
            report(f"{_where(args)}: set clientProtocol: Encrypted (TLS only; Plaintext accepts unencrypted clients).", None)


def _redis_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in (CACHE_REDIS, MANAGED_REDIS) and args.props.get("publicNetworkAccess") != "Disabled":
        report(f"{_where(args)}: set publicNetworkAccess: Disabled and reach it through a private endpoint in the "
               f"cluster's VNet (got {args.props.get('publicNetworkAccess')!r}; unset means Enabled).", None)


def _managed_redis_broker(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != MANAGED_REDIS_DB:
        return
    if args.props.get("clusteringPolicy") != "NoCluster":
        report(f"{_where(args)}: clusteringPolicy NoCluster: kombu's Redis transport cannot use Redis Cluster "
               "(cross-slot MULTI, Lua and list moves fail); it cannot be changed after creation.", None)
    if args.props.get("evictionPolicy") != "NoEviction":
        report(f"{_where(args)}: evictionPolicy NoEviction: a broker must never evict queued tasks.", None)


def _aks_access(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != AKS:
        return
    if args.props.get("enableRBAC") is not True:
        report(f"{_where(args)}: set enableRBAC: true.", None)
    if args.props.get("disableLocalAccounts") is not True:
        report(f"{_where(args)}: set disableLocalAccounts: true (Entra ID sign-in only, no static admin kubeconfig).", None)


def _aks_network_policy(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != AKS:
        return
    engine = (args.props.get("networkProfile") or {}).get("networkPolicy")
    if engine not in NETWORK_POLICY_ENGINES:
        report(f"{_where(args)}: set networkProfile.networkPolicy to cilium, calico or azure (got {engine!r}): "
               "without an engine NetworkPolicies are not enforced.", None)


AZURE_POLICIES = [
    ResourceValidationPolicy(
        name="azure-redis-tls", description="Azure Redis: TLS only (non-TLS port off, clientProtocol Encrypted), TLS >= 1.2.",
        validate=_redis_tls, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="azure-redis-public-network-access",
        description="Azure Redis: public network access disabled (private endpoint only).",
        validate=_redis_public, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="azure-managed-redis-broker", description="Azure Managed Redis used as a Celery broker: NoCluster, NoEviction.",
        validate=_managed_redis_broker, enforcement_level=ADVISORY),
    ResourceValidationPolicy(
        name="aks-access", description="AKS: Kubernetes RBAC on, local accounts disabled.",
        validate=_aks_access, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="aks-network-policy", description="AKS: a network policy engine enforces NetworkPolicies.",
        validate=_aks_network_policy, enforcement_level=MANDATORY),
]
