"""Build the whole component tree from a validated PlatformConfig.

The only place that looks at ``config.target`` is ``TARGETS``: it maps a target to a
cluster implementation and a Redis implementation. Everything after that takes only a
Kubernetes provider and a RedisEndpoint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pulumi
from pulumi import Output, ResourceOptions

from components import versions
from components.azure_redis import AzureCacheRedis, AzureCacheRedisArgs, AzureManagedRedis, AzureManagedRedisArgs
from components.cache_api import CacheApi, CacheApiArgs
from components.cluster import AksCluster, AksClusterArgs, KindCluster, KindClusterArgs
from components.config import PlatformConfig
from components.keda import Keda, KedaArgs
from components.monitoring import GRAFANA_SERVICE, PROMETHEUS_SERVICE, Monitoring, MonitoringArgs
from components.namespace import AppNamespace, AppNamespaceArgs, RedisAuth, RedisAuthArgs
from components.network import NetworkPolicies, NetworkPoliciesArgs
from components.producer import Producer, ProducerArgs
from components.redis import InClusterRedis, InClusterRedisArgs, RedisEndpoint
from components.redis_exporter import RedisExporter, RedisExporterArgs, queue_keys
from components.worker import KOMBU_UNACKED_KEY, CeleryWorker, CeleryWorkerArgs


class Cluster(Protocol):
    provider: Any
    kubeconfig: Output[str]


class Redis(Protocol):
    endpoint: RedisEndpoint
    kind: str


# -- config -> Args, grouped per component ----------------------------------------------
ArgsT = TypeVar("ArgsT")
#: Which config fields feed which component: an Args field ``x`` takes the config field
#: ``<prefix>x`` for the first prefix that exists, else ``x``. tests/infra/test_config_keys.py
#: checks every config key feeds some component (or is a decision key below).
CONFIG_PREFIXES: dict[type, tuple[str, ...]] = {
    KindClusterArgs: ("kubeconfig_",),
    AksClusterArgs: (),
    InClusterRedisArgs: ("redis_",),
    AzureManagedRedisArgs: ("redis_managed_", "redis_"),
    AzureCacheRedisArgs: ("redis_",),
    AppNamespaceArgs: (),
    KedaArgs: ("keda_",),
    NetworkPoliciesArgs: (),
    CeleryWorkerArgs: ("worker_",),
    ProducerArgs: ("producer_",),
    CacheApiArgs: ("cache_api_",),
    MonitoringArgs: ("monitoring_",),
    RedisExporterArgs: ("redis_exporter_",),
}
#: Config keys that choose implementations instead of feeding one.
DECISION_KEYS = ("target", "azure_redis", "monitoring")


def config_field_for(args_cls: type, field_name: str) -> str | None:
    """The config field that feeds ``args_cls.field_name``, or None (the Args default)."""
    for prefix in (*CONFIG_PREFIXES[args_cls], ""):
        if prefix + field_name in PlatformConfig.model_fields:
            return prefix + field_name
    return None


def args_from(args_cls: type[ArgsT], cfg: PlatformConfig, **wiring: Any) -> ArgsT:
    """``args_cls`` with every field the config has taken from ``cfg``; ``wiring`` gives
    the rest (outputs of other components). One place per component, no field copied by hand."""
    values = dict(wiring)
    for f in dataclasses.fields(args_cls):  # type: ignore[arg-type]
        key = None if f.name in values else config_field_for(args_cls, f.name)
        if key is not None:
            values[f.name] = getattr(cfg, key)
    return args_cls(**values)


# -- target implementations ---------------------------------------------------------------
TAGS = {"project": "redis-keda-platform"}


def _kind_cluster(cfg: PlatformConfig) -> Cluster:
    return KindCluster("kind", args_from(KindClusterArgs, cfg))


def _aks_cluster(cfg: PlatformConfig) -> Cluster:
    return AksCluster("aks", args_from(AksClusterArgs, cfg))


def _in_cluster_redis(cfg: PlatformConfig, cluster: Any, namespace: Output[str], k8s_opts: ResourceOptions) -> Redis:
    return InClusterRedis("redis", args_from(InClusterRedisArgs, cfg, namespace=namespace), k8s_opts)


# Both Azure Redis services get a private endpoint in the cluster's endpoint subnet.
def _azure_managed_redis(cfg: PlatformConfig, cluster: Any) -> Redis:
    return AzureManagedRedis("redis", args_from(
        AzureManagedRedisArgs, cfg, resource_group_name=cluster.resource_group.name,
        private_link=cluster.network.private_link, tags=TAGS))


def _azure_cache_redis(cfg: PlatformConfig, cluster: Any) -> Redis:
    return AzureCacheRedis("redis", args_from(
        AzureCacheRedisArgs, cfg, resource_group_name=cluster.resource_group.name,
        private_link=cluster.network.private_link, tags=TAGS))


#: aks: which Azure Redis service (the ``azureRedis`` key).
AZURE_REDIS: dict[str, Callable[[PlatformConfig, Any], Redis]] = {
    "managed": _azure_managed_redis,
    "classic": _azure_cache_redis,
}


def _azure_redis(cfg: PlatformConfig, cluster: Any, namespace: Output[str], k8s_opts: ResourceOptions) -> Redis:
    return AZURE_REDIS[cfg.azure_redis](cfg, cluster)


ClusterFactory = Callable[[PlatformConfig], Cluster]
RedisFactory = Callable[[PlatformConfig, Any, Output, ResourceOptions], Redis]

# The one decision point.
TARGETS: dict[str, tuple[ClusterFactory, RedisFactory]] = {
    "kind": (_kind_cluster, _in_cluster_redis),
    "aks": (_aks_cluster, _azure_redis),
}


@dataclass
class Platform:
    cluster: Cluster
    redis: Redis
    worker: CeleryWorker
    cache_api: CacheApi
    outputs: dict[str, Output[Any]]


def build_platform(cfg: PlatformConfig) -> Platform:
    """Create every resource of the stack. Returns the components and the stack outputs."""
    make_cluster, make_redis = TARGETS[cfg.target]
    cluster = make_cluster(cfg)
    k8s_opts = ResourceOptions(providers={"kubernetes": cluster.provider})

    ns = AppNamespace("app", AppNamespaceArgs(name=cfg.namespace), k8s_opts)
    redis = make_redis(cfg, cluster, ns.name, k8s_opts)
    endpoint = redis.endpoint
    auth = RedisAuth("redis-auth", RedisAuthArgs(namespace=ns.name, password=endpoint.password), k8s_opts)
    # watchNamespace from the Namespace's output: the chart puts a RoleBinding there, so the
    # release must wait for the namespace.
    keda = Keda("keda", args_from(KedaArgs, cfg, watch_namespace=ns.name), k8s_opts)
    wired = dict(namespace=ns.name, endpoint=endpoint)
    clients = dict(wired, secret_name=auth.secret_name)

    NetworkPolicies("netpol", args_from(NetworkPoliciesArgs, cfg, **wired, **_monitoring_network(cfg)), k8s_opts)
    worker = CeleryWorker("worker", args_from(CeleryWorkerArgs, cfg, **clients, keda_release=keda.release), k8s_opts)
    producer = Producer("producer", args_from(ProducerArgs, cfg, **clients), k8s_opts)
    cache_api = CacheApi("cache-api", args_from(CacheApiArgs, cfg, **clients, replica_image=cfg.redis_image), k8s_opts)

    monitoring = None
    if cfg.monitoring:
        limit = cfg.redis_limit  # the config model has checked that there is one
        assert limit is not None
        monitoring = Monitoring("monitoring", args_from(
            MonitoringArgs, cfg, app_namespace=ns.name, app_namespace_name=cfg.namespace,
            redis_client_limit=limit.clients, redis_memory_limit_bytes=limit.memory_bytes), k8s_opts)
        RedisExporter("redis-exporter", args_from(
            RedisExporterArgs, cfg, **clients,
            keys=queue_keys(cfg.queue_name, monitoring.dead_letter_queue, KOMBU_UNACKED_KEY)), k8s_opts)

    # Output names are used by the Makefile/scripts and CI: keep them stable.
    outputs: dict[str, Output[Any]] = {
        "target": Output.from_input(cfg.target),
        "namespace": ns.name,
        "cacheApiService": cache_api.service_address,
        "cacheApiServiceName": cache_api.service_name,
        "cacheApiDeploymentName": cache_api.deployment_name,
        "redisKind": Output.from_input(redis.kind),
        "redisHost": endpoint.host,
        "redisPort": Output.from_input(endpoint.port),
        "redisTls": Output.from_input(endpoint.tls),
        "kubeconfig": Output.secret(cluster.kubeconfig),
        "workerMode": Output.from_input(cfg.worker_mode),
        "workerScaledKind": Output.from_input(worker.scaled_kind),
        "workerScaledObjectName": worker.scaled_name,
        "workerDeploymentName": worker.deployment_name,
        "producerDeploymentName": producer.deployment_name,
        # "" when monitoring is off (scripts/grafana.sh and report say so).
        "monitoringNamespace": monitoring.namespace if monitoring else Output.from_input(""),
        "prometheusService": Output.from_input(PROMETHEUS_SERVICE if monitoring else ""),
        "grafanaService": Output.from_input(GRAFANA_SERVICE if monitoring else ""),
    }
    if monitoring:
        outputs["grafanaAdminPassword"] = Output.secret(monitoring.grafana_admin_password)
    return Platform(cluster=cluster, redis=redis, worker=worker, cache_api=cache_api, outputs=outputs)


def _monitoring_network(cfg: PlatformConfig) -> dict[str, Any]:
    """NetworkPolicy settings for monitoring: redis_exporter reaches Redis, and Prometheus (its
    namespace only) reaches the metrics ports. The cache API's /metrics is on its API port."""
    if not cfg.monitoring:
        return {}
    default_clients = next(f.default for f in dataclasses.fields(NetworkPoliciesArgs) if f.name == "redis_clients")
    return {
        "redis_clients": (*default_clients, RedisExporter.APP),
        "scraper_namespace": cfg.monitoring_namespace,
        "metrics_ports": {
            "worker": versions.WORKER_METRICS_PORT,
            "producer": versions.PRODUCER_METRICS_PORT,
            RedisExporter.APP: versions.REDIS_EXPORTER_PORT,
        },
    }


def export_outputs(platform: Platform) -> None:
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
