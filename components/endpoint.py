"""The Redis endpoint contract between a Redis implementation (in-cluster, Azure Managed
Redis, Azure Cache for Redis) and the workloads and KEDA that connect to it (docs/contract.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pulumi import Output


@dataclass(frozen=True)
class RedisEndpoint:
    """Where clients (pods and KEDA) reach Redis. ``password`` is a secret Output."""

    host: Output[str]
    port: int
    tls: bool
    password: Output[str]
    pod_labels: Mapping[str, str] | None = None
    """Labels of the Redis pods when Redis runs in the app namespace (NetworkPolicy
    selects them); None when Redis is outside the cluster."""
    namespace: Output[str] | None = None
    """Namespace of the in-cluster Redis pods (None outside the cluster)."""
    egress_cidrs: tuple[str, ...] | None = None
    """Where clients' egress to an out-of-cluster Redis may go (the private endpoint's
    subnet); None for the in-cluster Redis (selected by ``pod_labels``)."""
    maxmemory_bytes: int | None = None
    """The primary's maxmemory when this stack sets it (in-cluster); a replica of it must
    fit that much. None for a managed service (its SKU decides)."""
