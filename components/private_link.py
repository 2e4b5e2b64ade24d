"""Azure Redis off the internet: a private endpoint in the endpoint subnet, the private DNS
zone of the service's private-link domain linked to the cluster's VNet, and a DNS zone
group on the endpoint so the zone's A record follows the endpoint's address.

Clients keep the service's normal host name (``<name>.<region>.redis.azure.net`` or
``<name>.redis.cache.windows.net``), so TLS host-name verification stays on: Azure's
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

from components.azure_network import PrivateLinkPlacement


@dataclass(frozen=True, kw_only=True)
class RedisPrivateLinkArgs:
    resource_group_name: pulumi.Input[str]
    """Resource group of the endpoint and the zone."""
    location: pulumi.Input[str]
    """Region of the endpoint (the zone is global)."""
    target_resource_id: pulumi.Input[str]
    """The Redis resource (cache or redisEnterprise cluster)."""
    group_id: str
    """Private Link sub-resource: ``redisCache`` or ``redisEnterprise``."""
    dns_zone: str
    """Private DNS zone of the service: ``privatelink.redis.cache.windows.net`` or ``privatelink.redis.azure.net``."""
    placement: PrivateLinkPlacement
    """Endpoint subnet and VNet."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Azure tags."""

    def __post_init__(self) -> None:
        if self.group_id not in ("redisCache", "redisEnterprise"):
            raise ValueError(f"RedisPrivateLinkArgs.group_id: {self.group_id!r} is not a Redis Private Link group")
        if not self.dns_zone.startswith("privatelink."):
            raise ValueError(f"RedisPrivateLinkArgs.dns_zone: {self.dns_zone!r} is not a private-link zone")


class RedisPrivateLink(pulumi.ComponentResource):
    """PrivateEndpoint + PrivateZone + VirtualNetworkLink + PrivateDnsZoneGroup."""

    def __init__(self, name: str, args: RedisPrivateLinkArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:RedisPrivateLink", name, None, opts)
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
        self.register_outputs({"privateEndpointId": self.endpoint.id, "privateDnsZone": self.zone.name})
