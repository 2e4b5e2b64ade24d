"""The cache API: Deployment (replicas owned by the HPA), Service, HPA on CPU, PDB.

Read path ``replica-sidecar``: a Redis replica container in every API pod, replicating
from the in-cluster primary, bound to 127.0.0.1:6379; the API reads from it
(REDIS_READ_HOST/PORT) and writes to the primary. ``central``: everything to the primary.

A failed replica must not take the pod out of the Service (a pod is ready only when every
container is, and the API already falls back to the primary): the sidecar's shell
supervises redis-server in a restart loop, so the container keeps running, and its probes
ask whether that supervisor is alive, not whether redis-server answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from components import k8s as kx
from components import versions
from components.endpoint import RedisEndpoint
from components.limits import replica_memory_limit_mi

READ_PATHS = ("central", "replica-sidecar")
SIDECAR_PORT = 6379
#: The sidecar's supervising shell writes its pid here; the probes check that process.
SIDECAR_PID_FILE = "/tmp/replica-supervisor.pid"
#: Seconds between a redis-server exit and its restart.
SIDECAR_RESTART_DELAY_SECONDS = 1


@dataclass(frozen=True, kw_only=True)
class CacheApiArgs:
    namespace: pulumi.Input[str]
    """App namespace."""
    endpoint: RedisEndpoint
    """Redis primary."""
    secret_name: pulumi.Input[str]
    """Secret with the Redis password."""
    workload_identity_client_id: pulumi.Input[str] | None = None
    """A workload identity's client ID: the pods sign in to Redis with its Entra token and never
    see the key (components/workload_identity.py); None: the key from ``secret_name``."""
    image: str
    """Cache API image (pinned)."""
    image_pull_policy: str = "IfNotPresent"
    """imagePullPolicy."""
    redis_db: int = 0
    """REDIS_DB."""
    cache_ttl_seconds: int = 300
    """CACHE_TTL_SECONDS."""
    redis_max_connections: int = 16
    """REDIS_MAX_CONNECTIONS: bound of the pod's Redis pool (components/connections.py counts it)."""
    min_replicas: int = 2
    """HPA minReplicas."""
    max_replicas: int = 6
    """HPA maxReplicas."""
    cpu_target_percent: int = 70
    """HPA average CPU utilization target."""
    read_path: str = "central"
    """``central`` or ``replica-sidecar``."""
    replica_image: str = versions.REDIS_IMAGE
    """Image of the replica sidecar."""
    dataset_dir: str = "/app/dataset"
    """DATASET_DIR inside the image."""

    def __post_init__(self) -> None:
        if self.read_path not in READ_PATHS:
            raise ValueError(f"CacheApiArgs.read_path must be one of {READ_PATHS}")
        if self.read_path == "replica-sidecar" and self.endpoint.tls:
            raise ValueError("CacheApiArgs.read_path: 'replica-sidecar' needs a plain in-cluster Redis primary (endpoint.tls is true)")
        if self.read_path == "replica-sidecar" and self.endpoint.maxmemory_bytes is None:
            raise ValueError("CacheApiArgs.read_path: 'replica-sidecar' needs the primary's maxmemory (endpoint.maxmemory_bytes) to size the replica")
        if self.min_replicas < 1 or self.max_replicas < self.min_replicas:
            raise ValueError("CacheApiArgs.max_replicas must be >= min_replicas >= 1")
        if self.cache_ttl_seconds < 1:
            raise ValueError("CacheApiArgs.cache_ttl_seconds must be >= 1")
        if self.redis_max_connections < 1:
            raise ValueError("CacheApiArgs.redis_max_connections must be >= 1")


def _sidecar_primary_bytes(args: CacheApiArgs) -> int:
    """The primary's maxmemory, which sizes the replica sidecar (the config allows the sidecar
    only with the in-cluster Redis, whose endpoint carries it)."""
    if args.endpoint.maxmemory_bytes is None:
        raise ValueError("cacheApiReadPath 'replica-sidecar' needs the in-cluster Redis (target kind)")
    return args.endpoint.maxmemory_bytes


class CacheApi(pulumi.ComponentResource):
    service_address: Output[str]
    """``<service>.<namespace>.svc.cluster.local:8000``"""

    APP = "cache-api"

    def __init__(self, name: str, args: CacheApiArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:CacheApi", name, None, opts)
        self._labels = kx.labels(self.APP)
        self._auth = kx.PodRedisAuth(args.secret_name, args.workload_identity_client_id)
        sa = kx.service_account(name, self.APP, args.namespace, self._labels, self, self._auth.sa_annotations())
        self.deployment = self._create_deployment(name, args, sa)
        service = k8s.core.v1.Service(
            f"{name}-svc",
            metadata={"name": self.APP, "namespace": args.namespace, "labels": self._labels},
            spec={
                "type": "ClusterIP",
                "selector": self._labels,
                "ports": [{"name": "http", "port": versions.CACHE_API_PORT, "targetPort": "http", "protocol": "TCP"}],
            },
            opts=ResourceOptions(parent=self),
        )
        self._create_hpa(name, args)
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={"name": self.APP, "namespace": args.namespace, "labels": self._labels},
            spec={"maxUnavailable": 1, "selector": {"matchLabels": self._labels}},
            opts=ResourceOptions(parent=self),
        )
        self.service_name = service.metadata.name
        self.deployment_name = self.deployment.metadata.name
        self.service_address = Output.concat(
            service.metadata.name, ".", service.metadata.namespace, ".svc.cluster.local:", str(versions.CACHE_API_PORT)
        )
        self.register_outputs({"serviceAddress": self.service_address})

    def _api_container(self, args: CacheApiArgs) -> dict[str, Any]:
        env = self._auth.env(args.endpoint, args.redis_db) + [
            {"name": "CACHE_TTL_SECONDS", "value": str(args.cache_ttl_seconds)},
            {"name": "REDIS_MAX_CONNECTIONS", "value": str(args.redis_max_connections)},
            {"name": "DATASET_DIR", "value": args.dataset_dir},
        ]
        if args.read_path == "replica-sidecar":
            env += [
                {"name": "REDIS_READ_HOST", "value": "127.0.0.1"},
                {"name": "REDIS_READ_PORT", "value": str(SIDECAR_PORT)},
            ]
        return {
            "name": "api",
            "image": args.image,
            "imagePullPolicy": args.image_pull_policy,
            "command": ["uvicorn", "apps.cache_api.main:app", "--host", "0.0.0.0", "--port", str(versions.CACHE_API_PORT),
                        *versions.CACHE_API_SERVER_FLAGS],
            "ports": [{"name": "http", "containerPort": versions.CACHE_API_PORT, "protocol": "TCP"}],
            "env": env,
            "securityContext": kx.container_security_context(),
            "resources": kx.resources("100m", "192Mi", "1", "512Mi"),
            "livenessProbe": kx.http_probe("/healthz", "http", period=10, initial=10),
            "readinessProbe": kx.http_probe("/readyz", "http", period=5, initial=5),
            "volumeMounts": self._auth.mounts(),
        }

    @staticmethod
    def replica_start_script(maxmemory_bytes: int) -> str:
        """The sidecar's command: write the config (the password never reaches an argv),
        then run redis-server as a child, restarted whenever it exits. SIGTERM stops both."""
        server = (
            f"redis-server /tmp/redis.conf --port {SIDECAR_PORT} --bind 127.0.0.1 --protected-mode yes "
            '--replicaof "$REDIS_PRIMARY_HOST" "$REDIS_PRIMARY_PORT" --replica-read-only yes '
            f'--save "" --appendonly no --dir /tmp --maxmemory {maxmemory_bytes} --maxmemory-policy noeviction'
        )
        return "\n".join([
            "umask 077",
            'printf "masterauth %s\\nrequirepass %s\\n" "$REDIS_PASSWORD" "$REDIS_PASSWORD" > /tmp/redis.conf',
            f"echo $$ > {SIDECAR_PID_FILE}",
            "child=",
            """trap 'if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child"; fi; exit 0' TERM INT""",
            "while :; do",
            f"  {server} &",
            "  child=$!",
            '  wait "$child"',
            f'  echo "redis-replica: redis-server exited ($?), restarting in {SIDECAR_RESTART_DELAY_SECONDS} s; reads use the primary meanwhile" >&2',
            f"  sleep {SIDECAR_RESTART_DELAY_SECONDS}",
            "done",
        ])

    def _replica_container(self, args: CacheApiArgs) -> dict[str, Any]:
        uid = versions.REDIS_UID
        maxmemory = args.endpoint.maxmemory_bytes
        assert maxmemory is not None  # CacheApiArgs checks it
        memory = f"{replica_memory_limit_mi(maxmemory)}Mi"
        # Alive while the supervising shell is: a redis-server restart neither fails the
        # liveness probe (no container restart) nor the readiness probe (the pod stays in
        # the Service; the API reads from the primary until the replica is back).
        supervisor = ["sh", "-c", f'kill -0 "$(cat {SIDECAR_PID_FILE})"']
        return {
            "name": "redis-replica",
            "image": args.replica_image,
            "imagePullPolicy": args.image_pull_policy,
            "command": ["sh", "-c", self.replica_start_script(maxmemory)],
            "env": [
                {"name": "REDIS_PRIMARY_HOST", "value": args.endpoint.host},
                {"name": "REDIS_PRIMARY_PORT", "value": str(args.endpoint.port)},
                kx.secret_env("REDIS_PASSWORD", args.secret_name),
                kx.secret_env("REDISCLI_AUTH", args.secret_name),
            ],
            "securityContext": kx.container_security_context(uid),
            # It holds the whole primary dataset (up to the primary's maxmemory).
            "resources": kx.resources("50m", memory, "250m", memory),
            "livenessProbe": kx.exec_probe(supervisor, period=10, timeout=5, initial=5),
            "readinessProbe": kx.exec_probe(supervisor, period=5, timeout=5, initial=2),
            "volumeMounts": [{"name": "replica-tmp", "mountPath": "/tmp"}],
        }

    def _create_deployment(self, name: str, args: CacheApiArgs, sa) -> k8s.apps.v1.Deployment:
        containers = [self._api_container(args)]
        volumes = self._auth.volumes()
        skips = kx.APP_SKIPS
        if args.read_path == "replica-sidecar":
            containers.append(self._replica_container(args))
            # A full sync lands the primary's RDB here before it is loaded.
            volumes.append({"name": "replica-tmp", "emptyDir": {
                "sizeLimit": f"{replica_memory_limit_mi(_sidecar_primary_bytes(args))}Mi"}})
            skips = kx.REDIS_SKIPS
        return k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={
                "name": self.APP,
                "namespace": args.namespace,
                "labels": self._labels,
                "annotations": kx.checkov_skips(skips),
            },
            # No "replicas": the HPA owns the replica count.
            spec={
                "selector": {"matchLabels": self._labels},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {
                        "labels": self._auth.pod_labels(self._labels),
                        "annotations": {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(versions.CACHE_API_PORT),
                            "prometheus.io/path": "/metrics",
                        },
                    },
                    "spec": kx.pod_spec(sa, containers, volumes=volumes),
                },
            },
            opts=ResourceOptions(parent=self, ignore_changes=["spec.replicas"]),
        )

    def _create_hpa(self, name: str, args: CacheApiArgs) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
        return k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata={"name": self.APP, "namespace": args.namespace, "labels": self._labels},
            spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.deployment.metadata.name},
                "minReplicas": args.min_replicas,
                "maxReplicas": args.max_replicas,
                "metrics": [{
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": args.cpu_target_percent}},
                }],
            },
            opts=ResourceOptions(parent=self),
        )
