"""Azure Redis (and a private ACR) off the internet: a private endpoint in the endpoint subnet,
the private DNS zone of the service's private-link domain linked to the cluster's VNet, and
a DNS zone group on the endpoint so the zone's A records follow the endpoint's addresses.

Clients keep the service's normal host name (``<name>.<region>.redis.azure.net``,
``<name>.redis.cache.windows.net`` or ``<name>.azurecr.io``), so TLS host-name verification
stays on: Azure's
public DNS answers it with a CNAME into ``privatelink.…``, which inside the VNet resolves
through the linked private zone to the endpoint's private address. Pods and KEDA's operator
use the cluster DNS, which forwards to Azure DNS in the VNet, so both get the private
address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native
from pulumi import ResourceOptions

from components.audit import diagnostic_setting
from components.azure_network import PrivateLinkPlacement

#: Private Link sub-resource -> the private DNS zone of its service.
GROUP_ZONES = {
    "redisCache": "privatelink.redis.cache.windows.net",
    "redisEnterprise": "privatelink.redis.azure.net",
    "registry": "privatelink.azurecr.io",
}


@dataclass(frozen=True, kw_only=True)
class PrivateLinkArgs:
    resource_group_name: pulumi.Input[str]
    """Resource group of the endpoint and the zone."""
    location: pulumi.Input[str]
    """Region of the endpoint (the zone is global)."""
    target_resource_id: pulumi.Input[str]
    """The resource (Redis cache, redisEnterprise cluster or container registry)."""
    group_id: str
    """Private Link sub-resource: ``redisCache``, ``redisEnterprise`` or ``registry``."""
    placement: PrivateLinkPlacement
    """Endpoint subnet and VNet."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Azure tags."""
    log_workspace_id: pulumi.Input[str] | None = None
    """Log Analytics workspace for the endpoint's metrics (components/audit.py); None: none."""

    def __post_init__(self) -> None:
        if self.group_id not in GROUP_ZONES:
            raise ValueError(f"PrivateLinkArgs.group_id: {self.group_id!r} is not one of {', '.join(GROUP_ZONES)}")

    @property
    def dns_zone(self) -> str:
        """The private DNS zone of the service."""
        return GROUP_ZONES[self.group_id]


class PrivateLink(pulumi.ComponentResource):
    """PrivateEndpoint + PrivateZone + VirtualNetworkLink + PrivateDnsZoneGroup."""

    endpoint: azure_native.network.PrivateEndpoint

    def __init__(self, name: str, args: PrivateLinkArgs, opts: ResourceOptions | None = None):
        # It was RedisPrivateLink when only Redis had one: the alias keeps existing stacks' URNs.
        opts = ResourceOptions.merge(opts, ResourceOptions(
            aliases=[pulumi.Alias(type_="redis-keda-platform:index:RedisPrivateLink")]))
        super().__init__("redis-keda-platform:index:PrivateLink", name, None, opts)
        net, dns = azure_native.network, azure_native.privatedns
        child = ResourceOptions(parent=self)
        self.endpoint = net.PrivateEndpoint(
            f"{name}-endpoint",
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet=net.SubnetArgs(id=args.placement.subnet_id),
            private_link_service_connections=[net.PrivateLinkServiceConnectionArgs(
                name=f"{name}-{args.group_id}",
                private_link_service_id=args.target_resource_id,
                group_ids=[args.group_id],
            )],
            tags=dict(args.tags),
            opts=child,
        )
        self.zone = dns.PrivateZone(
            f"{name}-zone",
            resource_group_name=args.resource_group_name,
            private_zone_name=args.dns_zone,
            location="global",
            tags=dict(args.tags),
            opts=child,
        )
        self.vnet_link = dns.VirtualNetworkLink(
            f"{name}-vnet-link",
            resource_group_name=args.resource_group_name,
            private_zone_name=self.zone.name,
            location="global",
            virtual_network=dns.SubResourceArgs(id=args.placement.vnet_id),
            # Resolution only: the VNet's VMs do not register their own names here.
            registration_enabled=False,
            tags=dict(args.tags),
            opts=child,
        )
        self.zone_group = net.PrivateDnsZoneGroup(
            f"{name}-zone-group",
            resource_group_name=args.resource_group_name,
            private_endpoint_name=self.endpoint.name,
            private_dns_zone_group_name="default",
            private_dns_zone_configs=[net.PrivateDnsZoneConfigArgs(
                name=args.dns_zone.replace(".", "-"),
                private_dns_zone_id=self.zone.id,
            )],
            opts=child,
        )
        if args.log_workspace_id is not None:
            diagnostic_setting(f"{name}-endpoint", "private-endpoint", self.endpoint.id, args.log_workspace_id, self)
        self.register_outputs({"privateEndpointId": self.endpoint.id, "privateDnsZone": self.zone.name})
