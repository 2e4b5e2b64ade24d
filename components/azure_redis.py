"""Azure's two Redis services, each behind the same RedisEndpoint (host, port, TLS, secret
password) the in-cluster Redis exposes.

- ``AzureManagedRedis`` (``azureRedis: managed``, the default): Azure Managed Redis,
  ``Microsoft.Cache/redisEnterprise``, the successor any tenant can create.
- ``AzureCacheRedis`` (``azureRedis: classic``): Azure Cache for Redis,
  ``Microsoft.Cache/redis``. Microsoft retires it on 2028-09-30; since 2026-04-01 only
  tenants that already had a cache can create new ones.

Which one a stack gets is decided in ``components/platform.py`` (the one decision point),
never by the workloads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_azure_native as azure_native
from pulumi import Alias, Output, ResourceOptions

from components import versions
from components.audit import diagnostic_setting
from components.azure_network import PrivateLinkPlacement
from components.endpoint import RedisEndpoint
from components.private_link import PrivateLink, PrivateLinkArgs
from components.workload_identity import RedisWorkloadIdentities, RedisWorkloadIdentitiesArgs

_ACCESS = ("Enabled", "Disabled")
_MANAGED_SKU = re.compile(r"^(Balanced_B|MemoryOptimized_M|ComputeOptimized_X|FlashOptimized_A)[0-9]+$")
#: Azure Managed Redis has one database per cluster, and it must be called "default".
MANAGED_DATABASE_NAME = "default"
#: Without a private endpoint, the service's public IP is all clients can reach, and it
#: is not stable: egress can only be pinned to the port.
ANY_ADDRESS = ("0.0.0.0/0",)


class _AzureRedisComponent(pulumi.ComponentResource):
    """What both Azure Redis components declare: their private link group."""

    PRIVATE_LINK_GROUP: str


def _private_access(component: _AzureRedisComponent, name: str, resource_id: pulumi.Input[str],
                    resource_group_name: pulumi.Input[str], location: pulumi.Input[str],
                    placement: PrivateLinkPlacement | None, tags: Mapping[str, str],
                    log_workspace_id: pulumi.Input[str] | None) -> tuple[str, ...]:
    """The component's private endpoint (when placed) and the CIDRs clients may reach it on."""
    if placement is None:
        return ANY_ADDRESS
    PrivateLink(f"{name}-private", PrivateLinkArgs(
        resource_group_name=resource_group_name,
        location=location,
        target_resource_id=resource_id,
        group_id=component.PRIVATE_LINK_GROUP,
        placement=placement,
        tags=tags,
        log_workspace_id=log_workspace_id,
    ), ResourceOptions(parent=component))
    return (placement.subnet_cidr,)


def _azure_endpoint(component: _AzureRedisComponent, name: str, args: Any, resource_id: pulumi.Input[str],
                    host: pulumi.Input[str], port: int, primary_key: pulumi.Input[str]) -> RedisEndpoint:
    """An Azure Redis service's endpoint: TLS, the access key wrapped secret (list-keys results
    are not secret by themselves), egress to its private endpoint when it has one."""
    egress = _private_access(component, name, resource_id, args.resource_group_name, args.location,
                             args.private_link, args.tags, args.log_workspace_id)
    return RedisEndpoint(host=Output.from_input(host), port=port, tls=True, password=Output.secret(primary_key),
                         egress_cidrs=egress)


@dataclass(frozen=True, kw_only=True)
class AzureManagedRedisArgs:
    resource_group_name: pulumi.Input[str]
    """Resource group of the cluster."""
    location: pulumi.Input[str]
    """Azure region."""
    sku: str = versions.AZURE_MANAGED_REDIS_SKU
    """Azure Managed Redis SKU: Balanced_B*, MemoryOptimized_M*, ComputeOptimized_X*, FlashOptimized_A*."""
    public_network_access: str = "Disabled"
    """Enabled | Disabled (Disabled: reachable only through a private endpoint)."""
    high_availability: bool = True
    """Replicate the dataset (the SLA needs it); off halves the cost and loses the replica."""
    private_link: PrivateLinkPlacement | None = None
    """Where to put a private endpoint (+ private DNS); None: public endpoint only."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Azure tags."""
    log_workspace_id: pulumi.Input[str] | None = None
    """Log Analytics workspace for its diagnostic settings (components/audit.py); None: none."""

    def __post_init__(self) -> None:
        if not _MANAGED_SKU.match(self.sku):
            raise ValueError(f"AzureManagedRedisArgs.sku: {self.sku!r} is not an Azure Managed Redis SKU")
        if self.public_network_access not in _ACCESS:
            raise ValueError("AzureManagedRedisArgs.public_network_access must be Enabled or Disabled")


class AzureManagedRedis(_AzureRedisComponent):
    """Azure Managed Redis: a ``redisEnterprise`` cluster (minimum TLS 1.2, high
    availability) and its one database:

    - ``clusteringPolicy: NoCluster``: kombu's Redis transport cannot use Redis Cluster
      (its MULTI, Lua scripts and list moves span keys in different slots);
    - ``clientProtocol: Encrypted``: TLS only, on port 10000;
    - ``evictionPolicy: NoEviction``: a broker must never drop queued tasks; writes fail
      loudly instead;
    - ``accessKeysAuthentication: Enabled``: KEDA's redis scaler can only authenticate
      with a password today (kedacore/keda#7888), so Entra ID alone would blind it.

    The key comes from the database's list-keys call, wrapped secret.
    """

    endpoint: RedisEndpoint
    kind = "azure-managed-redis"
    """What serves Redis (the ``redisKind`` stack output)."""
    #: Private Link: the endpoint's group id and the private DNS zone of its host names.
    PRIVATE_LINK_GROUP = "redisEnterprise"

    def __init__(self, name: str, args: AzureManagedRedisArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:AzureManagedRedis", name, None, opts)
        re_ = azure_native.redisenterprise
        self.cluster = re_.RedisEnterprise(
            f"{name}-cluster",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=re_.SkuArgs(name=args.sku),
            high_availability=re_.HighAvailability.ENABLED if args.high_availability else re_.HighAvailability.DISABLED,
            minimum_tls_version=re_.TlsVersion.TLS_VERSION_1_2,
            public_network_access=args.public_network_access,
            tags=dict(args.tags),
            opts=ResourceOptions(parent=self),
        )
        self.database = re_.Database(
            f"{name}-db",
            resource_group_name=args.resource_group_name,
            cluster_name=self.cluster.name,
            database_name=MANAGED_DATABASE_NAME,
            port=versions.AZURE_MANAGED_REDIS_PORT,
            client_protocol=re_.Protocol.ENCRYPTED,
            clustering_policy=re_.ClusteringPolicy.NO_CLUSTER,
            eviction_policy=re_.EvictionPolicy.NO_EVICTION,
            access_keys_authentication=re_.AccessKeysAuthentication.ENABLED,
            opts=ResourceOptions(parent=self),
        )
        keys = re_.list_database_keys_output(
            resource_group_name=args.resource_group_name,
            cluster_name=self.cluster.name,
            database_name=self.database.name,
        )
        self.resource_id = self.cluster.id
        if args.log_workspace_id is not None:
            diagnostic_setting(f"{name}-cluster", "managed-redis", self.cluster.id, args.log_workspace_id, self)
            diagnostic_setting(f"{name}-db", "managed-redis-database", self.database.id, args.log_workspace_id, self)
        self.endpoint = _azure_endpoint(self, name, args, self.cluster.id, self.cluster.host_name,
                                        versions.AZURE_MANAGED_REDIS_PORT, keys.primary_key)
        self._args = args
        self.register_outputs({"host": self.endpoint.host, "password": self.endpoint.password})

    def workload_identities(self, oidc_issuer_url: pulumi.Input[str], namespace: str,
                            service_accounts: tuple[str, ...]) -> dict[str, Output[str]]:
        """Keyless apps: an identity per ServiceAccount, let into the database with an Entra
        token (components/workload_identity.py). ServiceAccount -> the identity's client ID."""
        identities = RedisWorkloadIdentities("redis-identity", RedisWorkloadIdentitiesArgs(
            resource_group_name=self._args.resource_group_name, location=self._args.location,
            oidc_issuer_url=oidc_issuer_url, namespace=namespace, service_accounts=service_accounts,
            redis_cluster_name=self.cluster.name, redis_database_name=self.database.name, tags=self._args.tags,
        ), ResourceOptions(parent=self))
        return identities.client_ids


# ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class AzureCacheRedisArgs:
    resource_group_name: pulumi.Input[str]
    """Resource group of the cache."""
    location: pulumi.Input[str]
    """Azure region."""
    sku: str = "Standard"
    """Basic | Standard | Premium."""
    capacity: int = 1
    """Size within the SKU family."""
    public_network_access: str = "Disabled"
    """Enabled | Disabled (Disabled: reachable only through a private endpoint)."""
    redis_version: str = versions.AZURE_REDIS_VERSION
    """Redis major version."""
    private_link: PrivateLinkPlacement | None = None
    """Where to put a private endpoint (+ private DNS); None: public endpoint only."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Azure tags."""
    log_workspace_id: pulumi.Input[str] | None = None
    """Log Analytics workspace for its diagnostic settings (components/audit.py); None: none."""

    def __post_init__(self) -> None:
        if self.sku not in ("Basic", "Standard", "Premium"):
            raise ValueError(f"AzureCacheRedisArgs.sku: unknown SKU {self.sku!r}")
        if self.public_network_access not in _ACCESS:
            raise ValueError("AzureCacheRedisArgs.public_network_access must be Enabled or Disabled")
        if not 0 <= self.capacity <= 6:
            raise ValueError("AzureCacheRedisArgs.capacity must be 0..6")


class AzureCacheRedis(_AzureRedisComponent):
    """Azure Cache for Redis: TLS only (6380), minimum TLS 1.2, ``noeviction``; key read
    with ``list_redis_keys`` and wrapped secret. For tenants that can still create one."""

    endpoint: RedisEndpoint
    kind = "azure-cache-for-redis"
    """What serves Redis (the ``redisKind`` stack output)."""
    PRIVATE_LINK_GROUP = "redisCache"

    def __init__(self, name: str, args: AzureCacheRedisArgs, opts: ResourceOptions | None = None):
        # The component was called AzureRedis before Azure Managed Redis existed here: the
        # alias keeps an existing stack's cache instead of replacing it.
        opts = ResourceOptions.merge(opts, ResourceOptions(aliases=[Alias(type_="redis-keda-platform:index:AzureRedis")]))
        super().__init__("redis-keda-platform:index:AzureCacheRedis", name, None, opts)
        r = azure_native.redis
        family = r.SkuFamily.P if args.sku == "Premium" else r.SkuFamily.C
        self.cache = r.Redis(
            f"{name}-cache",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=r.SkuArgs(name=args.sku, family=family, capacity=args.capacity),
            enable_non_ssl_port=False,
            minimum_tls_version=r.TlsVersion.TLS_VERSION_1_2,
            public_network_access=args.public_network_access,
            redis_version=args.redis_version,
            # A Celery broker must never silently drop queued tasks under memory pressure.
            redis_configuration=r.RedisCommonPropertiesRedisConfigurationArgs(maxmemory_policy="noeviction"),
            tags=dict(args.tags),
            opts=ResourceOptions(parent=self, additional_secret_outputs=["accessKeys"]),
        )
        keys = r.list_redis_keys_output(name=self.cache.name, resource_group_name=args.resource_group_name)
        self.resource_id = self.cache.id
        if args.log_workspace_id is not None:
            diagnostic_setting(f"{name}-cache", "classic-redis", self.cache.id, args.log_workspace_id, self)
        self.endpoint = _azure_endpoint(self, name, args, self.cache.id, self.cache.host_name,
                                        versions.AZURE_REDIS_TLS_PORT, keys.primary_key)
        self.register_outputs({"host": self.endpoint.host, "password": self.endpoint.password})
