"""``Platform``: the whole component tree as one ComponentResource, built from a validated
PlatformConfig. The stack program (``__main__.py``) and the multi-language package
(``provider/``) both construct it; its inputs are components/platform_args.py's.

The only place that decides what ``config.target`` builds is ``TARGETS``: it maps a target to
a cluster implementation and a Redis implementation (components/config.py checks some keys
per target, before anything is built). Everything after that takes only a
Kubernetes provider and a RedisEndpoint.

No ``from __future__ import annotations`` here: the component provider's analyzer reads
``Platform``'s annotations as objects (a string annotation is not a type to it).
"""

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pulumi
from pulumi import Output, ResourceOptions

from components import versions
from components.azure_redis import AzureCacheRedis, AzureCacheRedisArgs, AzureManagedRedis, AzureManagedRedisArgs
from components.cache_api import CacheApi, CacheApiArgs
from components.cluster import AksCluster, AksClusterArgs, KindCluster, KindClusterArgs
from components.config import PlatformConfig
from components.endpoint import RedisEndpoint
from components.keda import Keda, KedaArgs
from components.monitoring import GRAFANA_SERVICE, PROMETHEUS_SERVICE, Monitoring, MonitoringArgs
from components.namespace import AppNamespace, AppNamespaceArgs, RedisAuth, RedisAuthArgs
from components.network import NetworkPolicies, NetworkPoliciesArgs
from components.platform_args import PlatformArgs, config_from_args
from components.producer import Producer, ProducerArgs
from components.redis import InClusterRedis, InClusterRedisArgs
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
DECISION_KEYS = ("target", "azure_redis", "monitoring", "redis_entra_auth")


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
TAGS = versions.AZURE_TAGS


# ``opts`` of the cluster and an Azure Redis: parent Platform; of Kubernetes objects: also the
# cluster's provider.
def _kind_cluster(cfg: PlatformConfig, opts: ResourceOptions) -> Cluster:
    return KindCluster("kind", args_from(KindClusterArgs, cfg), opts)


def _aks_cluster(cfg: PlatformConfig, opts: ResourceOptions) -> Cluster:
    return AksCluster("aks", args_from(AksClusterArgs, cfg), opts)


def _in_cluster_redis(cfg: PlatformConfig, cluster: Any, namespace: Output[str], k8s_opts: ResourceOptions,
                      opts: ResourceOptions) -> Redis:
    return InClusterRedis("redis", args_from(InClusterRedisArgs, cfg, namespace=namespace), k8s_opts)


# Both Azure Redis services get a private endpoint in the cluster's endpoint subnet.
def _azure_managed_redis(cfg: PlatformConfig, cluster: Any, opts: ResourceOptions) -> Redis:
    return AzureManagedRedis("redis", args_from(
        AzureManagedRedisArgs, cfg, resource_group_name=cluster.resource_group.name,
        private_link=cluster.network.private_link, tags=TAGS, log_workspace_id=cluster.log_workspace_id), opts)


def _azure_cache_redis(cfg: PlatformConfig, cluster: Any, opts: ResourceOptions) -> Redis:
    return AzureCacheRedis("redis", args_from(
        AzureCacheRedisArgs, cfg, resource_group_name=cluster.resource_group.name,
        private_link=cluster.network.private_link, tags=TAGS, log_workspace_id=cluster.log_workspace_id), opts)


#: aks: which Azure Redis service (the ``azureRedis`` key).
AZURE_REDIS: dict[str, Callable[[PlatformConfig, Any, ResourceOptions], Redis]] = {
    "managed": _azure_managed_redis,
    "classic": _azure_cache_redis,
}


def _azure_redis(cfg: PlatformConfig, cluster: Any, namespace: Output[str], k8s_opts: ResourceOptions,
                 opts: ResourceOptions) -> Redis:
    return AZURE_REDIS[cfg.azure_redis](cfg, cluster, opts)


ClusterFactory = Callable[[PlatformConfig, ResourceOptions], Cluster]
RedisFactory = Callable[[PlatformConfig, Any, Output, ResourceOptions, ResourceOptions], Redis]

# The one decision point.
TARGETS: dict[str, tuple[ClusterFactory, RedisFactory]] = {
    "kind": (_kind_cluster, _in_cluster_redis),
    "aks": (_aks_cluster, _azure_redis),
}


#: Every component the Platform creates directly was, before the Platform existed, parented by
#: the stack. This alias keeps their URNs (and, through them, every child's), so `pulumi up`
#: on an existing stack reparents instead of replacing (docs/infra.md, "URNs").
WAS_AT_STACK_ROOT = pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)

#: Stack outputs that are secrets (the schema marks them too: provider/package.py).
SECRET_OUTPUTS = ("kubeconfig", "grafanaAdminPassword")


class Platform(pulumi.ComponentResource):
    """The whole platform: a cluster (AKS or an existing kind cluster), Redis (Azure Managed Redis, Azure Cache for Redis or in-cluster), KEDA, the Celery worker autoscaled on its queue, the producer, the cache API and monitoring. Inputs are the stack config keys of redis-keda-platform."""

    target: pulumi.Output[str]
    """Where it was deployed: kind or aks."""
    namespace: pulumi.Output[str]
    """Kubernetes namespace of the apps."""
    cache_api_service: pulumi.Output[str]
    """The cache API's in-cluster address (host:port)."""
    cache_api_service_name: pulumi.Output[str]
    """Name of the cache API Service."""
    cache_api_deployment_name: pulumi.Output[str]
    """Name of the cache API Deployment."""
    redis_kind: pulumi.Output[str]
    """Which Redis: in-cluster, azure-managed-redis or azure-cache-for-redis."""
    redis_host: pulumi.Output[str]
    """Redis host name the apps and KEDA use."""
    redis_port: pulumi.Output[int]
    """Redis port (10000 Azure Managed Redis, 6380 Azure Cache for Redis, 6379 in-cluster)."""
    redis_tls: pulumi.Output[bool]
    """Whether Redis is reached over TLS (with certificate verification)."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig of the cluster (secret)."""
    worker_mode: pulumi.Output[str]
    """deployment or job."""
    worker_scaled_kind: pulumi.Output[str]
    """ScaledObject or ScaledJob."""
    worker_scaled_object_name: pulumi.Output[str]
    """Name of the worker's ScaledObject or ScaledJob."""
    worker_deployment_name: pulumi.Output[str]
    """Name of the worker Deployment (deployment mode) or of the sweeper Deployment (job mode)."""
    producer_deployment_name: pulumi.Output[str]
    """Name of the producer Deployment."""
    monitoring_namespace: pulumi.Output[str]
    """Namespace of kube-prometheus-stack; empty when monitoring is off."""
    prometheus_service: pulumi.Output[str]
    """Prometheus Service name; empty when monitoring is off."""
    grafana_service: pulumi.Output[str]
    """Grafana Service name; empty when monitoring is off."""
    grafana_admin_password: pulumi.Output[str] | None
    """Grafana's admin password (secret); only with monitoring on."""

    def __init__(self, name: str, args: PlatformArgs, opts: ResourceOptions | None = None):
        # Validated before anything is registered: a bad key fails naming it, creating nothing.
        cfg = config_from_args(args)
        super().__init__("redis-keda-platform:index:Platform", name, None, opts)
        self.config = cfg
        self.outputs = _build(cfg, self)
        for key, value in self.outputs.items():
            setattr(self, _snake(key), value)
        self.register_outputs(self.outputs)


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


def _build(cfg: PlatformConfig, parent: pulumi.Resource) -> dict[str, Output[Any]]:
    """Create every resource of the platform under ``parent``. Returns the stack outputs."""
    top = ResourceOptions(parent=parent, aliases=[WAS_AT_STACK_ROOT])
    make_cluster, make_redis = TARGETS[cfg.target]
    cluster = make_cluster(cfg, top)
    k8s_opts = ResourceOptions.merge(top, ResourceOptions(providers={"kubernetes": cluster.provider}))

    ns = AppNamespace("app", AppNamespaceArgs(name=cfg.namespace), k8s_opts)
    redis = make_redis(cfg, cluster, ns.name, k8s_opts, top)
    endpoint = redis.endpoint
    auth = RedisAuth("redis-auth", RedisAuthArgs(namespace=ns.name, password=endpoint.password), k8s_opts)
    # watchNamespace from the Namespace's output: the chart puts a RoleBinding there, so the
    # release must wait for the namespace.
    keda = Keda("keda", args_from(KedaArgs, cfg, watch_namespace=ns.name, endpoint=endpoint,
                                  scraper_namespace=cfg.monitoring_namespace if cfg.monitoring else None), k8s_opts)
    wired = dict(namespace=ns.name, endpoint=endpoint)
    clients = dict(wired, secret_name=auth.secret_name)

    # Keyless apps where the Redis service offers it (Azure Managed Redis): SA -> client ID.
    keyless = _workload_identities(cfg, cluster, redis)
    NetworkPolicies("netpol", args_from(NetworkPoliciesArgs, cfg, **wired, **_monitoring_network(cfg),
                                        token_clients=_token_clients(keyless)), k8s_opts)
    worker = CeleryWorker("worker", args_from(CeleryWorkerArgs, cfg, **clients, keda_release=keda.release,
                                              workload_identity_client_id=keyless.get(CeleryWorker.APP)), k8s_opts)
    # The producer's backpressure and the memory alert count against the same limit.
    limit = cfg.redis_limit
    producer = Producer("producer", args_from(ProducerArgs, cfg, **clients,
                                              redis_memory_limit_bytes=limit.memory_bytes if limit else None,
                                              workload_identity_client_id=keyless.get(Producer.APP)), k8s_opts)
    cache_api = CacheApi("cache-api", args_from(CacheApiArgs, cfg, **clients, replica_image=cfg.redis_image,
                                                workload_identity_client_id=keyless.get(CacheApi.APP)), k8s_opts)

    monitoring = None
    if cfg.monitoring:
        assert limit is not None  # the config model has checked that there is one
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
    return outputs


#: The ServiceAccounts of the apps that sign in to Redis (the sweeper runs as the worker's).
REDIS_APP_ACCOUNTS = (CeleryWorker.APP, Producer.APP, CacheApi.APP)


def _workload_identities(cfg: PlatformConfig, cluster: Any, redis: Redis) -> dict[str, Output[str]]:
    """Each app ServiceAccount's workload identity, when the config asks for keyless apps and
    the Redis service offers it (a ``workload_identities`` method); else ``{}`` (the key)."""
    make = getattr(redis, "workload_identities", None)
    if not cfg.redis_entra_auth or make is None:
        return {}
    result: dict[str, Output[str]] = make(cluster.oidc_issuer_url, cfg.namespace, REDIS_APP_ACCOUNTS)
    return result


def _token_clients(keyless: dict[str, Output[str]]) -> tuple[str, ...]:
    """The pods that fetch Entra tokens: the keyless apps, the sweeper with the worker."""
    apps = tuple(keyless)
    return apps + ((CeleryWorker.SWEEPER_APP,) if CeleryWorker.APP in keyless else ())


def _monitoring_network(cfg: PlatformConfig) -> dict[str, Any]:
    """NetworkPolicy settings for monitoring: redis_exporter reaches Redis, and Prometheus (its
    namespace only) reaches the metrics ports. The cache API's /metrics is on its API port."""
    if not cfg.monitoring:
        return {}
    return {
        "redis_clients": (*NetworkPoliciesArgs.redis_clients, RedisExporter.APP),
        "scraper_namespace": cfg.monitoring_namespace,
        "metrics_ports": {
            "worker": versions.WORKER_METRICS_PORT,
            "producer": versions.PRODUCER_METRICS_PORT,
            RedisExporter.APP: versions.REDIS_EXPORTER_PORT,
        },
    }


def export_outputs(platform: Platform) -> None:
    """The stack's outputs are the Platform's outputs, under the same names."""
    for key, value in platform.outputs.items():
        pulumi.export(key, value)
