"""The aks stack's network: a VNet with a node subnet (AKS, Azure CNI overlay: pod IPs stay
off the VNet) and a subnet for private endpoints, or two subnets you bring by ID.

Address plan (defaults; each a config key), chosen to stay clear of the cluster's own
ranges, which the cluster sets explicitly so they cannot drift:

    VNet               10.42.0.0/16   vnetAddressSpace
      node subnet      10.42.0.0/20   nodeSubnetCidr      (4,091 node IPs)
      endpoint subnet  10.42.16.0/24  endpointSubnetCidr  (private endpoints)
    AKS services       10.0.0.0/16    (DNS service 10.0.0.10)
    AKS pods (overlay) 10.244.0.0/16

``network_problems`` checks a plan with ``ipaddress`` (CIDRs, containment, overlaps); the
config model runs it before any resource is registered, and the Args run it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native
from pulumi import Output, ResourceOptions

from components.address_plan import (
    DEFAULT_ENDPOINT_SUBNET,
    DEFAULT_NODE_SUBNET,
    DEFAULT_VNET,
    network_problems,
    vnet_id_of,
)


@dataclass(frozen=True)
class PrivateLinkPlacement:
    """Where an Azure Redis puts its private endpoint, and what clients may reach."""

    subnet_id: pulumi.Input[str]
    """The endpoint subnet."""
    vnet_id: pulumi.Input[str]
    """The VNet the private DNS zone is linked to (the cluster's)."""
    subnet_cidr: str
    """The endpoint subnet's CIDR (plain: the NetworkPolicy egress rule is built from it)."""


@dataclass(frozen=True, kw_only=True)
class AzureNetworkArgs:
    resource_group_name: pulumi.Input[str]
    """Resource group of the VNet (created here) ."""
    location: pulumi.Input[str]
    """Azure region."""
    vnet_address_space: str = DEFAULT_VNET
    """VNet address space (not used with bring-your-own subnets)."""
    node_subnet_cidr: str = DEFAULT_NODE_SUBNET
    """AKS node subnet (not used with bring-your-own subnets)."""
    endpoint_subnet_cidr: str = DEFAULT_ENDPOINT_SUBNET
    """Private endpoint subnet; with bring-your-own, the CIDR of ``endpoint_subnet_id``."""
    node_subnet_id: str = ""
    """Bring-your-own: an existing subnet for the nodes (both IDs or neither)."""
    endpoint_subnet_id: str = ""
    """Bring-your-own: an existing subnet for private endpoints, in the same VNet."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Azure tags."""

    @property
    def bring_your_own(self) -> bool:
        return bool(self.node_subnet_id or self.endpoint_subnet_id)

    def __post_init__(self) -> None:
        byo = self.bring_your_own
        problems = network_problems(
            vnet_address_space=None if byo else self.vnet_address_space,
            node_subnet_cidr=None if byo else self.node_subnet_cidr,
            endpoint_subnet_cidr=self.endpoint_subnet_cidr,
            node_subnet_id=self.node_subnet_id,
            endpoint_subnet_id=self.endpoint_subnet_id,
        )
        if problems:
            raise ValueError("AzureNetworkArgs: " + "; ".join(f"{k}: {m}" for k, m in problems))


class AzureNetwork(pulumi.ComponentResource):
    """VNet + node subnet + private endpoint subnet, or the two subnets given by ID."""

    vnet_id: Output[str]
    node_subnet_id: Output[str]
    endpoint_subnet_id: Output[str]
    endpoint_subnet_cidr: str

    def __init__(self, name: str, args: AzureNetworkArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:AzureNetwork", name, None, opts)
        self.endpoint_subnet_cidr = args.endpoint_subnet_cidr
        if args.bring_your_own:
            self.vnet_id = Output.from_input(vnet_id_of(args.node_subnet_id))
            self.node_subnet_id = Output.from_input(args.node_subnet_id)
            self.endpoint_subnet_id = Output.from_input(args.endpoint_subnet_id)
        else:
            net = azure_native.network
            vnet = net.VirtualNetwork(
                f"{name}-vnet",
                resource_group_name=args.resource_group_name,
                location=args.location,
                address_space=net.AddressSpaceArgs(address_prefixes=[args.vnet_address_space]),
                tags=dict(args.tags),
                # The subnets are resources of their own: never let the VNet drop them.
                opts=ResourceOptions(parent=self, ignore_changes=["subnets"]),
            )
            nodes = net.Subnet(
                f"{name}-nodes",
                resource_group_name=args.resource_group_name,
                virtual_network_name=vnet.name,
                address_prefix=args.node_subnet_cidr,
                opts=ResourceOptions(parent=self),
            )
            endpoints = net.Subnet(
                f"{name}-endpoints",
                resource_group_name=args.resource_group_name,
                virtual_network_name=vnet.name,
                address_prefix=args.endpoint_subnet_cidr,
                private_endpoint_network_policies=net.VirtualNetworkPrivateEndpointNetworkPolicies.DISABLED,
                # One subnet operation at a time per VNet (Azure rejects concurrent ones).
                opts=ResourceOptions(parent=self, depends_on=[nodes]),
            )
            self.vnet_id = vnet.id
            self.node_subnet_id = nodes.id
            self.endpoint_subnet_id = endpoints.id
        self.register_outputs({"vnetId": self.vnet_id, "nodeSubnetId": self.node_subnet_id,
                               "endpointSubnetId": self.endpoint_subnet_id})

    @property
    def private_link(self) -> PrivateLinkPlacement:
        return PrivateLinkPlacement(subnet_id=self.endpoint_subnet_id, vnet_id=self.vnet_id,
                                    subnet_cidr=self.endpoint_subnet_cidr)
