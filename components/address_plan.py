"""The aks stack's address plan, checked with ``ipaddress`` before any resource exists: CIDRs,
containment, overlaps with the cluster's own ranges, and subnets brought by ID in one VNet
(components/azure_network.py builds the network from it). No Pulumi import.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

#: The cluster's service and overlay pod ranges (set explicitly on the AKS network profile).
AKS_SERVICE_CIDR = "10.0.0.0/16"
AKS_DNS_SERVICE_IP = "10.0.0.10"
AKS_POD_CIDR = "10.244.0.0/16"
DEFAULT_VNET = "10.42.0.0/16"
DEFAULT_NODE_SUBNET = "10.42.0.0/20"
DEFAULT_ENDPOINT_SUBNET = "10.42.16.0/24"

_SUBNET_ID = re.compile(
    r"^(?P<vnet>/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+)"
    r"/subnets/[^/]+$",
    re.IGNORECASE,
)
_CLUSTER_RANGES = {"the AKS service CIDR": AKS_SERVICE_CIDR, "the AKS pod CIDR": AKS_POD_CIDR}


def vnet_id_of(subnet_id: str) -> str:
    """``/subscriptions/…/virtualNetworks/<vnet>/subnets/<s>`` -> the VNet's ID."""
    match = _SUBNET_ID.match(subnet_id)
    if not match:
        raise ValueError(f"{subnet_id!r} is not a subnet resource ID")
    return match.group("vnet")


def _network(value: str, name: str, problems: list[tuple[str, str]]) -> ipaddress.IPv4Network | None:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        problems.append((name, f"{value!r} is not a CIDR ({exc})"))
        return None
    if not isinstance(net, ipaddress.IPv4Network):
        problems.append((name, f"{value!r} is not an IPv4 CIDR"))
        return None
    return net


def network_problems(
    *,
    vnet_address_space: str | None,
    node_subnet_cidr: str | None,
    endpoint_subnet_cidr: str | None,
    node_subnet_id: str = "",
    endpoint_subnet_id: str = "",
    names: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """Problems with an address plan, as ``(name, message)``; ``[]`` if it is sound.

    ``None`` means "not given" (bring-your-own network: only what was given is checked).
    ``names`` maps each argument name to the name to report (config keys)."""
    names = dict(names or {})

    def n(arg: str) -> str:
        return names.get(arg) or arg

    problems: list[tuple[str, str]] = []
    if bool(node_subnet_id) != bool(endpoint_subnet_id):
        given, missing = ("node_subnet_id", "endpoint_subnet_id") if node_subnet_id else ("endpoint_subnet_id", "node_subnet_id")
        problems.append((n(missing), f"bring-your-own network needs both subnet IDs ({n(given)} is set)"))
    vnets = set()
    for arg, value in (("node_subnet_id", node_subnet_id), ("endpoint_subnet_id", endpoint_subnet_id)):
        if value:
            try:
                vnets.add(vnet_id_of(value).lower())
            except ValueError as exc:
                problems.append((n(arg), f"{exc} (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>)"))
    if len(vnets) > 1:
        problems.append((n("endpoint_subnet_id"), "the endpoint subnet must be in the node subnet's VNet (the private DNS zone is linked to that one VNet)"))

    cidrs = {arg: value for arg, value in (("vnet_address_space", vnet_address_space),
                                           ("node_subnet_cidr", node_subnet_cidr),
                                           ("endpoint_subnet_cidr", endpoint_subnet_cidr)) if value is not None}
    nets = {arg: net for arg, value in cidrs.items() if (net := _network(value, n(arg), problems)) is not None}
    vnet = nets.get("vnet_address_space")
    subnets = {arg: net for arg, net in nets.items() if arg != "vnet_address_space"}
    if vnet is not None:
        for arg, net in subnets.items():
            if not net.subnet_of(vnet):
                problems.append((n(arg), f"{net} is outside {n('vnet_address_space')} {vnet}"))
    if len(subnets) == 2 and subnets["node_subnet_cidr"].overlaps(subnets["endpoint_subnet_cidr"]):
        problems.append((n("endpoint_subnet_cidr"), f"{subnets['endpoint_subnet_cidr']} overlaps {n('node_subnet_cidr')} {subnets['node_subnet_cidr']}"))
    for arg, net in nets.items():
        for label, cluster_range in _CLUSTER_RANGES.items():
            if net.overlaps(ipaddress.ip_network(cluster_range)):
                problems.append((n(arg), f"{net} overlaps {label} {cluster_range}"))
    return problems
