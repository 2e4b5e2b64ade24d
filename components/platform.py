"""Build the whole component tree from a validated PlatformConfig.

The only place that looks at ``config.target`` is ``TARGETS``: it maps a target to a
cluster implementation and a Redis implementation. Everything after that takes only a
Kubernetes provider and a RedisEndpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
from pulumi import Output, ResourceOptions

from components import versions
from components.cache_api import CacheApi, CacheApiArgs
from components.cluster import AksCluster, AksClusterArgs, KindCluster, KindClusterArgs
from components.config import PlatformConfig
from components.keda import Keda, KedaArgs
from components.monitoring import GRAFANA_SERVICE, PROMETHEUS_SERVICE, Monitoring, MonitoringArgs
from components.namespace import AppNamespace, AppNamespaceArgs, RedisAuth, RedisAuthArgs
from components.network import NetworkPolicies, NetworkPoliciesArgs
from components.producer import Producer, ProducerArgs
from components.redis import AzureRedis, AzureRedisArgs, InClusterRedis, InClusterRedisArgs, RedisEndpoint
from components.redis_exporter import RedisExporter, RedisExporterArgs, queue_keys
from components.worker import KOMBU_UNACKED_KEY, CeleryWorker, CeleryWorkerArgs


class Cluster(Protocol):
    provider: Any
    kubeconfig: Output[str]


class Redis(Protocol):
    endpoint: RedisEndpoint


# -- target implementations ---------------------------------------------------------------
def _kind_cluster(cfg: PlatformConfig) -> Cluster:
    return KindCluster("kind", KindClusterArgs(context=cfg.kubeconfig_context))


def _aks_cluster(cfg: PlatformConfig) -> Cluster:
    return AksCluster("aks", AksClusterArgs(
        location=cfg.location,
        kubernetes_version=cfg.kubernetes_version,
        system_node_vm_size=cfg.system_node_vm_size,
        system_node_count=cfg.system_node_count,
        user_node_vm_size=cfg.user_node_vm_size,
        user_node_min_count=cfg.user_node_min_count,
        user_node_max_count=cfg.user_node_max_count,
        create_acr=cfg.create_acr,
    ))


def _in_cluster_redis(cfg: PlatformConfig, cluster: Any, namespace: Output[str], k8s_opts: ResourceOptions) -> Redis:
    return InClusterRedis("redis", InClusterRedisArgs(
        namespace=namespace,
        image=cfg.redis_image,
        image_pull_policy=cfg.image_pull_policy,
        storage_size=cfg.redis_storage_size,
        storage_class=cfg.redis_storage_class,
    ), k8s_opts)


def _azure_redis(cfg: PlatformConfig, cluster: Any, namespace: Output[str], k8s_opts: ResourceOptions) -> Redis:
    return AzureRedis("redis", AzureRedisArgs(
        resource_group_name=cluster.resource_group.name,
        location=cfg.location,
        sku=cfg.redis_sku,
        capacity=cfg.redis_capacity,
        public_network_access=cfg.redis_public_network_access,
        tags={"project": "redis-keda-platform"},
    ))


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
    keda = Keda("keda", KedaArgs(namespace=cfg.keda_namespace, watch_namespace=cfg.namespace), k8s_opts)

    NetworkPolicies("netpol", NetworkPoliciesArgs(
        namespace=ns.name, endpoint=endpoint, keda_namespace=cfg.keda_namespace,
        **_monitoring_network(cfg),
    ), k8s_opts)
    worker = CeleryWorker("worker", CeleryWorkerArgs(
        namespace=ns.name,
        endpoint=endpoint,
        secret_name=auth.secret_name,
        keda_release=keda.release,
        image=cfg.worker_image,
        image_pull_policy=cfg.image_pull_policy,
        mode=cfg.worker_mode,
        queue_name=cfg.queue_name,
        redis_db=cfg.redis_db,
        list_length=cfg.list_length,
        activation_list_length=cfg.activation_list_length,
        min_replicas=cfg.worker_min_replicas,
        max_replicas=cfg.worker_max_replicas,
        cooldown_seconds=cfg.cooldown_seconds,
        polling_interval_seconds=cfg.polling_interval_seconds,
        work_seconds_min=cfg.work_seconds_min,
        work_seconds_max=cfg.work_seconds_max,
        visibility_timeout_seconds=cfg.visibility_timeout_seconds,
        idle_exit_seconds=cfg.worker_idle_exit_seconds,
        job_scaling_strategy=cfg.job_scaling_strategy,
    ), k8s_opts)
    producer = Producer("producer", ProducerArgs(
        namespace=ns.name,
        endpoint=endpoint,
        secret_name=auth.secret_name,
        image=cfg.producer_image,
        image_pull_policy=cfg.image_pull_policy,
        queue_name=cfg.queue_name,
        redis_db=cfg.redis_db,
        rate=cfg.producer_rate,
        replicas=cfg.producer_replicas,
    ), k8s_opts)
    cache_api = CacheApi("cache-api", CacheApiArgs(
        namespace=ns.name,
        endpoint=endpoint,
        secret_name=auth.secret_name,
        image=cfg.cache_api_image,
        image_pull_policy=cfg.image_pull_policy,
        redis_db=cfg.redis_db,
        cache_ttl_seconds=cfg.cache_ttl_seconds,
        min_replicas=cfg.cache_api_min_replicas,
        max_replicas=cfg.cache_api_max_replicas,
        cpu_target_percent=cfg.cache_api_cpu_target_percent,
        read_path=cfg.cache_api_read_path,
        replica_image=cfg.redis_image,
    ), k8s_opts)

    monitoring = None
    if cfg.monitoring:
        monitoring = Monitoring("monitoring", MonitoringArgs(
            namespace=cfg.monitoring_namespace,
            app_namespace=ns.name,
            app_namespace_name=cfg.namespace,
            keda_namespace=cfg.keda_namespace,
            queue_name=cfg.queue_name,
            worker_max_replicas=cfg.worker_max_replicas,
        ), k8s_opts)
        RedisExporter("redis-exporter", RedisExporterArgs(
            namespace=ns.name,
            endpoint=endpoint,
            secret_name=auth.secret_name,
            keys=queue_keys(cfg.queue_name, monitoring.dead_letter_queue, KOMBU_UNACKED_KEY),
            redis_db=cfg.redis_db,
        ), k8s_opts)

    # Output names are used by the Makefile/scripts and CI: keep them stable.
    outputs: dict[str, Output[Any]] = {
        "target": Output.from_input(cfg.target),
        "namespace": ns.name,
        "cacheApiService": cache_api.service_address,
        "cacheApiServiceName": cache_api.service_name,
        "cacheApiDeploymentName": cache_api.deployment_name,
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
    return {
        "redis_clients": ("worker", "producer", "cache-api", RedisExporter.APP),
        "monitoring_namespace": cfg.monitoring_namespace,
        "metrics_ports": {
            "worker": versions.WORKER_METRICS_PORT,
            "producer": versions.PRODUCER_METRICS_PORT,
            RedisExporter.APP: versions.REDIS_EXPORTER_PORT,
        },
    }


def export_outputs(platform: Platform) -> None:
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
