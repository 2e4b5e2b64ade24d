"""redis-keda-platform's Pulumi components.

``Platform`` (components/platform.py) is the whole stack: what ``__main__.py`` and the
multi-language package (provider/) construct. The others are its parts, usable on their own:

- clusters: ``KindCluster``, ``AksCluster`` (with ``AzureNetwork`` and ``AuditLog``);
- Redis: ``InClusterRedis``, ``AzureManagedRedis``, ``AzureCacheRedis`` (with
  ``PrivateLink``, which a private ACR uses too), each giving a ``RedisEndpoint`` (components/endpoint.py);
- workloads: ``Keda``, ``CeleryWorker``, ``Producer``, ``CacheApi``, ``NetworkPolicies``,
  ``Monitoring``, ``RedisExporter``, ``AppNamespace``, ``RedisAuth``.

The rules the stack config is checked with import no SDK: components/config.py,
limits.py, address_plan.py, aks_baseline.py, connections.py, versions.py. So ``from components import
Platform`` loads each component's module only when it is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "Platform": "platform", "PlatformArgs": "platform_args",
    "KindCluster": "cluster", "AksCluster": "cluster", "AzureNetwork": "azure_network", "AuditLog": "audit",
    "InClusterRedis": "redis", "AzureManagedRedis": "azure_redis", "AzureCacheRedis": "azure_redis",
    "PrivateLink": "private_link", "RedisEndpoint": "endpoint",
    "Keda": "keda", "CeleryWorker": "worker", "Producer": "producer", "CacheApi": "cache_api",
    "NetworkPolicies": "network", "Monitoring": "monitoring", "RedisExporter": "redis_exporter",
    "AppNamespace": "namespace", "RedisAuth": "namespace",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    return getattr(importlib.import_module(f"components.{_PUBLIC[name]}"), name)
