"""The aks stack's security and operations baseline settings, checked before any resource
exists: who may reach the API server, the availability zones, the maintenance window.
No Pulumi import (the config model runs these; components/cluster.py applies them).
"""

from __future__ import annotations

import ipaddress

#: AKS takes at most this many authorized IP ranges.
MAX_AUTHORIZED_RANGES = 200
#: Zones AKS node pools accept (in regions that have zones).
ZONES = ("1", "2", "3")
#: Each planned maintenance window (cluster upgrades, node-OS upgrades) lasts this long;
#: AKS's minimum for the auto-upgrade schedules.
MAINTENANCE_HOURS = 4
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: The categories of the cluster's diagnostic setting (the AKS baseline's: the admin audit
#: log without get/list noise, Entra sign-ins, controller manager and autoscaler).
AKS_LOG_CATEGORIES = ("kube-audit-admin", "guard", "kube-controller-manager", "cluster-autoscaler")

_SET_IT = ("set it to the CIDRs that run `pulumi up` and kubectl (your and CI's public egress), comma-separated, "
           "e.g. pulumi config set apiServerAuthorizedIpRanges \"$(curl -s https://ifconfig.me)/32\"; "
           "or use apiServerAccess private")


def split_list(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [item.strip() for item in value.split(",") if item.strip()]


def authorized_ranges(value: str) -> list[str]:
    """The ranges as AKS takes them (normalized CIDRs); call after ``api_access_problems``."""
    return [str(ipaddress.ip_network(item, strict=True)) for item in split_list(value)]


def api_access_problems(access: str, ranges: str, key: str = "apiServerAuthorizedIpRanges") -> list[tuple[str, str]]:
    """Problems with the API server access settings, as ``(key, message)``."""
    items = split_list(ranges)
    if access == "private":
        if items:
            return [(key, "cannot be combined with apiServerAccess private (AKS refuses authorized ranges on a "
                     "private cluster): remove it")]
        return []
    if not items:
        return [(key, f"required on aks (the API server would be open to every address): {_SET_IT}")]
    problems: list[tuple[str, str]] = []
    seen: set[ipaddress.IPv4Network] = set()
    for item in items:
        try:
            net = ipaddress.ip_network(item, strict=True)
        except ValueError as exc:
            problems.append((key, f"{item!r} is not a CIDR ({exc}): write an address as a.b.c.d/32"))
            continue
        if not isinstance(net, ipaddress.IPv4Network):
            problems.append((key, f"{item!r}: AKS authorized ranges are IPv4 CIDRs"))
        elif net.prefixlen == 0:
            problems.append((key, f"{item!r} opens the API server to every address: {_SET_IT}"))
        elif net in seen:
            problems.append((key, f"{item!r} is listed twice"))
        else:
            seen.add(net)
    if len(items) > MAX_AUTHORIZED_RANGES:
        problems.append((key, f"{len(items)} ranges; AKS takes at most {MAX_AUTHORIZED_RANGES}: merge them"))
    return problems


def zone_problems(value: str, key: str = "availabilityZones") -> list[tuple[str, str]]:
    items = split_list(value)
    bad = [z for z in items if z not in ZONES]
    if bad:
        return [(key, f"{', '.join(repr(z) for z in bad)}: zones are {', '.join(ZONES)} (comma-separated; "
                 "empty = no zones, for regions without them)")]
    if len(set(items)) != len(items):
        return [(key, "a zone is listed twice")]
    return []
