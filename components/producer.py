"""The producer: submits Celery tasks at a steady rate (``--forever --rate R``)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi import ResourceOptions

from components import k8s as kx
from components import versions
from components.endpoint import RedisEndpoint


@dataclass(frozen=True, kw_only=True)
class ProducerArgs:
    namespace: pulumi.Input[str]
    """App namespace."""
    endpoint: RedisEndpoint
    """Redis (the Celery broker)."""
    secret_name: pulumi.Input[str]
    """Secret with the Redis password."""
    workload_identity_client_id: pulumi.Input[str] | None = None
    """A workload identity's client ID: the pods sign in to Redis with its Entra token and never
    see the key (components/workload_identity.py); None: the key from ``secret_name``."""
    image: str
    """Producer image (pinned)."""
    image_pull_policy: str = "IfNotPresent"
    """imagePullPolicy."""
    queue_name: str = "celery"
    """CELERY_QUEUE."""
    redis_db: int = 0
    """REDIS_DB."""
    rate: float = 0.0
    """Tasks per second of the steady stream; 0 = standby (the pod only serves ``kubectl exec`` bursts)."""
    replicas: int = 1
    """Fixed replica count (not autoscaled)."""
    publish_max_memory_percent: float = 80.0
    """PUBLISH_MAX_MEMORY_PERCENT: publishing holds while Redis's used memory is at this
    percent of its limit (``redis_memory_limit_bytes`` or what Redis reports); the rest is
    kept for the workers."""
    redis_memory_limit_bytes: int | None = None
    """REDIS_MAXMEMORY_BYTES: the memory limit of the Redis this stack gets, the one the memory
    alert uses too (components/connections.py ``Limit.memory_bytes``: the in-cluster maxmemory,
    the Azure size's memory). Azure Managed Redis reports no maxmemory to clients."""

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("ProducerArgs.rate must be >= 0")
        if self.replicas < 0:
            raise ValueError("ProducerArgs.replicas must be >= 0")
        if not self.queue_name:
            raise ValueError("ProducerArgs.queue_name must not be empty")
        if not 10 <= self.publish_max_memory_percent <= 95:
            raise ValueError("ProducerArgs.publish_max_memory_percent must be 10..95")


class Producer(pulumi.ComponentResource):
    """Producer Deployment. rate > 0: ``--forever --rate R``; rate 0: ``--standby`` (submits
    nothing; bursts are run with ``kubectl exec deploy/producer -- python -m apps.producer --count N``)."""

    deployment_name: pulumi.Output[str]

    APP = "producer"

    @staticmethod
    def _command(rate: float) -> list[str]:
        if rate > 0:
            return ["python", "-m", "apps.producer", "--forever", "--rate", kx.fmt_number(rate)]
        return ["python", "-m", "apps.producer", "--standby"]

    @staticmethod
    def _env(args: ProducerArgs) -> list[dict[str, str]]:
        env = [{"name": "CELERY_QUEUE", "value": args.queue_name},
               {"name": "PRODUCER_METRICS_PORT", "value": str(versions.PRODUCER_METRICS_PORT)},
               {"name": "PUBLISH_MAX_MEMORY_PERCENT", "value": kx.fmt_number(args.publish_max_memory_percent)}]
        if args.redis_memory_limit_bytes is not None:
            env.append({"name": "REDIS_MAXMEMORY_BYTES", "value": str(args.redis_memory_limit_bytes)})
        return env

    def __init__(self, name: str, args: ProducerArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:Producer", name, None, opts)
        lbl = kx.labels(self.APP)
        auth = kx.PodRedisAuth(args.secret_name, args.workload_identity_client_id)
        sa = kx.service_account(name, self.APP, args.namespace, lbl, self, auth.sa_annotations())
        health = ["python", "-m", "apps.producer.healthcheck"]
        container = {
            "name": "producer",
            "image": args.image,
            "imagePullPolicy": args.image_pull_policy,
            "command": self._command(args.rate),
            "env": auth.env(args.endpoint, args.redis_db) + self._env(args),
            # Served by the Deployment's process only (a `kubectl exec` burst serves nothing).
            "ports": [{"name": "metrics", "containerPort": versions.PRODUCER_METRICS_PORT, "protocol": "TCP"}],
            "securityContext": kx.container_security_context(),
            "resources": kx.resources("50m", "96Mi", "250m", "256Mi"),
            # Live while it waits for Redis (a restart cannot help), not ready (docs/worker.md).
            "livenessProbe": kx.exec_probe(health, period=20, timeout=10, initial=20),
            "readinessProbe": kx.exec_probe([*health, "--ready"], period=10, timeout=10, initial=5),
            "volumeMounts": auth.mounts(),
        }
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={
                "name": self.APP,
                "namespace": args.namespace,
                "labels": lbl,
                "annotations": kx.checkov_skips(kx.APP_SKIPS),
            },
            spec={
                "replicas": args.replicas,
                "selector": {"matchLabels": lbl},
                "template": {
                    "metadata": {"labels": auth.pod_labels(lbl)},
                    "spec": kx.pod_spec(sa, [container], grace_seconds=15, volumes=auth.volumes()),
                },
            },
            opts=ResourceOptions(parent=self),
        )
        self.deployment_name = self.deployment.metadata.name
        self.register_outputs({"deploymentName": self.deployment_name})
