"""The Redis endpoint every client takes, and the in-cluster Redis (target kind).

Every Redis implementation (``InClusterRedis`` here, ``AzureManagedRedis`` and
``AzureCacheRedis`` in ``components/azure_redis.py``) exposes the same ``endpoint``
(RedisEndpoint); workloads take only the endpoint and never learn where Redis runs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pulumi import Output, ResourceOptions

from components import k8s as kx
from components import versions
from components.endpoint import RedisEndpoint
from components.limits import REDIS_RESERVED_MI, redis_maxmemory_bytes


# ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class InClusterRedisArgs:
    namespace: pulumi.Input[str]
    """Namespace (must exist; pass the Namespace's output so it is created first)."""
    image: str = versions.REDIS_IMAGE
    """Redis image, pinned."""
    image_pull_policy: str = "IfNotPresent"
    """imagePullPolicy of the Redis container."""
    storage_size: str = "1Gi"
    """PVC size of /data."""
    storage_class: str = ""
    """StorageClass of the PVC; empty = cluster default."""
    memory_limit_mi: int = 512
    """Container memory limit (and request) in MiB; maxmemory is derived from it
    (``redis_maxmemory_bytes``)."""
    service_name: str = "redis"
    """ClusterIP Service name (clients use ``<service>.<namespace>.svc.cluster.local``)."""
    max_clients: int = 1000
    """``maxclients``, set explicitly: the connection budget (components/connections.py) is
    checked against it."""

    def __post_init__(self) -> None:
        if not self.storage_size:
            raise ValueError("InClusterRedisArgs.storage_size must not be empty")
        if not self.service_name:
            raise ValueError("InClusterRedisArgs.service_name must not be empty")
        if self.memory_limit_mi <= 2 * REDIS_RESERVED_MI:
            raise ValueError(f"InClusterRedisArgs.memory_limit_mi must exceed {2 * REDIS_RESERVED_MI}")
        if self.max_clients < 1:
            raise ValueError("InClusterRedisArgs.max_clients must be >= 1")


class InClusterRedis(pulumi.ComponentResource):
    """A single Redis primary: StatefulSet + PVC, password from pulumi-random, hardened pod,
    AOF persistence, password in its own Secret (never on a command line)."""

    endpoint: RedisEndpoint
    password: Output[str]
    kind = "in-cluster"
    """What serves Redis (the ``redisKind`` stack output)."""

    APP = "redis"

    def __init__(self, name: str, args: InClusterRedisArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:InClusterRedis", name, None, opts)
        self._labels = kx.labels(self.APP, "primary")
        password = random.RandomPassword(
            f"{name}-password",
            length=32,
            special=False,
            opts=ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        self.password = Output.secret(password.result)
        secret = k8s.core.v1.Secret(
            f"{name}-server-auth",
            metadata={"name": f"{args.service_name}-server-auth", "namespace": args.namespace, "labels": self._labels},
            type="Opaque",
            string_data={kx.PASSWORD_KEY: self.password},
            opts=ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
        )
        sa = kx.service_account(name, self.APP, args.namespace, self._labels, self)
        headless, service = self._create_services(name, args)
        self.statefulset = self._create_statefulset(name, args, secret, sa, headless)
        self.endpoint = RedisEndpoint(
            host=Output.concat(service.metadata.name, ".", service.metadata.namespace, ".svc.cluster.local"),
            port=versions.REDIS_PORT,
            tls=False,
            password=self.password,
            pod_labels=dict(self._labels),
            namespace=Output.from_input(args.namespace),
            maxmemory_bytes=redis_maxmemory_bytes(args.memory_limit_mi),
        )
        self.register_outputs({"host": self.endpoint.host, "password": self.password})

    def _create_services(self, name: str, args: InClusterRedisArgs) -> tuple[k8s.core.v1.Service, k8s.core.v1.Service]:
        port = {"name": "redis", "port": versions.REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}
        headless = k8s.core.v1.Service(
            f"{name}-headless",
            metadata={"name": f"{args.service_name}-headless", "namespace": args.namespace, "labels": self._labels},
            spec={"clusterIP": "None", "selector": self._labels, "ports": [port]},
            opts=ResourceOptions(parent=self),
        )
        service = k8s.core.v1.Service(
            f"{name}-svc",
            metadata={"name": args.service_name, "namespace": args.namespace, "labels": self._labels},
            spec={"type": "ClusterIP", "selector": self._labels, "ports": [port]},
            opts=ResourceOptions(parent=self),
        )
        return headless, service

    def _create_statefulset(self, name, args, secret, sa, headless) -> k8s.apps.v1.StatefulSet:
        uid = versions.REDIS_UID
        # The password goes into a config file on the emptyDir by a shell builtin (printf),
        # so it is never on a process command line.
        start = (
            "umask 077; "
            'printf "requirepass %s\\nmasterauth %s\\n" "$REDIS_PASSWORD" "$REDIS_PASSWORD" > /tmp/redis.conf; '
            f"exec redis-server /tmp/redis.conf --port {versions.REDIS_PORT} --bind 0.0.0.0 "
            "--protected-mode yes --dir /data --appendonly yes "
            f"--maxmemory {redis_maxmemory_bytes(args.memory_limit_mi)} --maxmemory-policy noeviction "
            f"--maxclients {args.max_clients}"
        )
        memory = f"{args.memory_limit_mi}Mi"
        ping = ["sh", "-c", f"redis-cli -p {versions.REDIS_PORT} ping | grep -q PONG"]
        container = {
            "name": "redis",
            "image": args.image,
            "imagePullPolicy": args.image_pull_policy,
            "command": ["sh", "-c", start],
            "ports": [{"name": "redis", "containerPort": versions.REDIS_PORT, "protocol": "TCP"}],
            "env": [
                kx.secret_env("REDIS_PASSWORD", secret.metadata.name),
                # redis-cli reads the password from REDISCLI_AUTH: nothing on the command line.
                kx.secret_env("REDISCLI_AUTH", secret.metadata.name),
            ],
            "securityContext": kx.container_security_context(uid),
            # Request = limit: the broker's memory is reserved on the node, never overcommitted.
            "resources": kx.resources("100m", memory, "500m", memory),
            "livenessProbe": kx.exec_probe(ping, period=10, timeout=5, initial=15),
            "readinessProbe": kx.exec_probe(ping, period=5, timeout=5, initial=5),
            "volumeMounts": [{"name": "data", "mountPath": "/data"}, kx.TMP_MOUNT],
        }
        pvc_spec: dict = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": args.storage_size}},
        }
        if args.storage_class:
            pvc_spec["storageClassName"] = args.storage_class
        return k8s.apps.v1.StatefulSet(
            f"{name}-sts",
            metadata={
                "name": self.APP,
                "namespace": args.namespace,
                "labels": self._labels,
                "annotations": kx.checkov_skips(kx.REDIS_SKIPS),
            },
            spec={
                "serviceName": headless.metadata.name,
                "replicas": 1,
                "selector": {"matchLabels": self._labels},
                "template": {
                    "metadata": {"labels": self._labels},
                    "spec": kx.pod_spec(sa, [container], volumes=[kx.tmp_volume("16Mi")], uid=uid),
                },
                "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": self._labels}, "spec": pvc_spec}],
            },
            opts=ResourceOptions(parent=self),
        )
