"""The Celery worker, autoscaled by KEDA on the length of its Redis list (the queue).

mode ``deployment``: Deployment (no ``replicas``: KEDA owns it) + ScaledObject.
mode ``job``: ScaledJob; each Job's worker drains the queue and exits when idle, so
scale-down never kills a running task. A Job killed mid-task leaves its task in kombu's
``unacked`` hash (or the transport's ``<queue>.inflight`` list), where no KEDA trigger of a
ScaledJob looks: an always-on ``worker-sweeper`` Deployment (``python -m
apps.worker.sweeper``) puts such tasks back in the queue, which then starts a Job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from components import k8s as kx
from components import versions
from components.endpoint import RedisEndpoint
from components.limits import WORKER_HARD_LIMIT_MARGIN, hard_time_limit

KEDA_API = "keda.sh/v1alpha1"
GRACE_MARGIN_SECONDS = 30
#: kombu's Redis transport keeps delivered, not yet acknowledged messages in this HASH
#: (``Channel.unacked_key``; the worker's transport keeps it: tests/test_contract.py).
KOMBU_UNACKED_KEY = "unacked"


@dataclass(frozen=True, kw_only=True)
class CeleryWorkerArgs:
    namespace: pulumi.Input[str]
    """App namespace."""
    endpoint: RedisEndpoint
    """The Redis the worker consumes from and KEDA measures (the same one)."""
    secret_name: pulumi.Input[str]
    """Kubernetes Secret holding the Redis password (key ``password``)."""
    workload_identity_client_id: pulumi.Input[str] | None = None
    """A workload identity's client ID: the pods sign in to Redis with its Entra token and never
    see the key (components/workload_identity.py); None: the key from ``secret_name``."""
    keda_release: pulumi.Resource
    """The KEDA Helm release: every KEDA custom resource depends on it."""
    image: str
    """Worker image (pinned)."""
    image_pull_policy: str = "IfNotPresent"
    """imagePullPolicy."""
    mode: str = "deployment"
    """``deployment`` (ScaledObject) or ``job`` (ScaledJob)."""
    queue_name: str = "celery"
    """Celery queue = Redis list = KEDA ``listName``."""
    redis_db: int = 0
    """Redis database index (REDIS_DB and KEDA ``databaseIndex``)."""
    list_length: int = 5
    """KEDA target list length per replica."""
    activation_list_length: int = 0
    """KEDA activation threshold (scale from zero above it)."""
    min_replicas: int = 0
    """minReplicaCount (0 = scale to zero)."""
    max_replicas: int = 10
    """maxReplicaCount."""
    concurrency: int = 2
    """WORKER_CONCURRENCY: prefork pool processes per pod (components/connections.py counts them)."""
    cooldown_seconds: int = 60
    """ScaledObject cooldownPeriod."""
    polling_interval_seconds: int = 5
    """pollingInterval."""
    work_seconds_min: float = 1
    """WORK_SECONDS_MIN."""
    work_seconds_max: float = 10
    """WORK_SECONDS_MAX (also sizes terminationGracePeriodSeconds)."""
    visibility_timeout_seconds: int = 120
    """CELERY_VISIBILITY_TIMEOUT (> work_seconds_max)."""
    idle_exit_seconds: int = 30
    """job mode: WORKER_IDLE_EXIT_SECONDS."""
    job_scaling_strategy: str = "accurate"
    """job mode: scalingStrategy.strategy."""
    result_ttl_seconds: int = 86400
    """RESULT_TTL_SECONDS: TTL of each ``users:<task id>`` result hash."""
    dead_letter_max_length: int = 1000
    """DEAD_LETTER_MAX_LENGTH: the dead-letter list is trimmed to this length."""
    successful_jobs_history_limit: int = 5
    """job mode: finished Jobs kept."""
    failed_jobs_history_limit: int = 5
    """job mode: failed Jobs kept."""

    def __post_init__(self) -> None:
        if self.mode not in ("deployment", "job"):
            raise ValueError(f"CeleryWorkerArgs.mode must be 'deployment' or 'job', got {self.mode!r}")
        if not self.queue_name:
            raise ValueError("CeleryWorkerArgs.queue_name must not be empty")
        if self.result_ttl_seconds <= 0:
            raise ValueError("CeleryWorkerArgs.result_ttl_seconds must be > 0")
        if self.dead_letter_max_length <= 0:
            raise ValueError("CeleryWorkerArgs.dead_letter_max_length must be > 0")
        if self.max_replicas < self.min_replicas:
            raise ValueError("CeleryWorkerArgs.max_replicas must be >= min_replicas")
        if self.concurrency < 1:
            raise ValueError("CeleryWorkerArgs.concurrency must be >= 1")
        if self.work_seconds_max < self.work_seconds_min:
            raise ValueError("CeleryWorkerArgs.work_seconds_max must be >= work_seconds_min")
        if self.visibility_timeout_seconds <= self.hard_time_limit:
            raise ValueError("CeleryWorkerArgs.visibility_timeout_seconds must exceed the worker's hard time "
                             f"limit, ceil(work_seconds_max) + {WORKER_HARD_LIMIT_MARGIN} = {self.hard_time_limit}")

    @property
    def hard_time_limit(self) -> int:
        return hard_time_limit(self.work_seconds_max)

    @property
    def grace_seconds(self) -> int:
        return int(math.ceil(self.work_seconds_max)) + GRACE_MARGIN_SECONDS


def cr_name(cr: k8s.apiextensions.CustomResource) -> Output[str]:
    """metadata.name of a CustomResource (its metadata output is untyped)."""
    return cr.metadata.apply(lambda m: m["name"] if isinstance(m, dict) else m.name)


class CeleryWorker(pulumi.ComponentResource):
    """Worker pods + TriggerAuthentication + ScaledObject or ScaledJob."""

    scaled_name: Output[str]
    """Name of the ScaledObject (deployment mode) or ScaledJob (job mode)."""
    scaled_kind: str
    deployment_name: Output[str]
    """The worker Deployment's name (deployment mode); "" in job mode."""
    sweeper: k8s.apps.v1.Deployment | None
    """job mode: the always-on ``worker-sweeper`` Deployment; None in deployment mode (the
    ScaledObject's ``unacked`` trigger keeps a worker, whose own sweep restores tasks)."""

    APP = "worker"
    SWEEPER_APP = "worker-sweeper"

    def __init__(self, name: str, args: CeleryWorkerArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:CeleryWorker", name, None, opts)
        self._labels = kx.labels(self.APP)
        keda_opts = ResourceOptions(parent=self, depends_on=[args.keda_release])
        self._auth = kx.PodRedisAuth(args.secret_name, args.workload_identity_client_id)
        sa = kx.service_account(name, self.APP, args.namespace, self._labels, self, self._auth.sa_annotations())
        auth = self._create_trigger_auth(name, args, keda_opts)
        trigger = self._trigger(args, auth, args.queue_name, "queue")
        if args.mode == "deployment":
            deployment = self._create_deployment(name, args, sa)
            scaled = k8s.apiextensions.CustomResource(
                f"{name}-scaledobject",
                api_version=KEDA_API,
                kind="ScaledObject",
                metadata={"name": self.APP, "namespace": args.namespace, "labels": self._labels},
                spec={
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment.metadata.name},
                    "minReplicaCount": args.min_replicas,
                    "maxReplicaCount": args.max_replicas,
                    "cooldownPeriod": args.cooldown_seconds,
                    "pollingInterval": args.polling_interval_seconds,
                    # The queue, and kombu's unacked hash: a task abandoned by a killed pod
                    # waits there (not in the list) until a running worker's sweep restores it,
                    # so while it is non-empty at least one worker runs (never stuck at 0),
                    # whatever activationListLength says.
                    "triggers": [trigger, self._trigger(args, auth, KOMBU_UNACKED_KEY, "unacked", activation=0)],
                },
                opts=keda_opts,
            )
            self.scaled_kind = "ScaledObject"
            self.deployment_name = deployment.metadata.name
            self.sweeper = None
        else:
            scaled = self._create_scaled_job(name, args, sa, trigger, keda_opts)
            self.scaled_kind = "ScaledJob"
            self.deployment_name = Output.from_input("")
            self.sweeper = self._create_sweeper(name, args, sa)
        self.scaled_name = cr_name(scaled)
        self.register_outputs({"scaledName": self.scaled_name})

    # -- KEDA ---------------------------------------------------------------------------
    def _create_trigger_auth(self, name: str, args: CeleryWorkerArgs, opts: ResourceOptions):
        return k8s.apiextensions.CustomResource(
            f"{name}-trigger-auth",
            api_version=KEDA_API,
            kind="TriggerAuthentication",
            metadata={"name": f"{self.APP}-redis", "namespace": args.namespace, "labels": self._labels},
            spec={"secretTargetRef": [{"parameter": "password", "name": args.secret_name, "key": kx.PASSWORD_KEY}]},
            opts=opts,
        )

    @staticmethod
    def _trigger(args: CeleryWorkerArgs, auth: k8s.apiextensions.CustomResource, key: str,
                 trigger_name: str, activation: int | None = None) -> dict[str, Any]:
        """A redis trigger on ``key``: KEDA measures LLEN for a list, HLEN for a hash."""
        ep = args.endpoint
        return {
            "type": "redis",
            "name": trigger_name,
            "metadata": {
                # The same endpoint the pods get in REDIS_HOST/REDIS_PORT/REDIS_TLS.
                "address": Output.concat(ep.host, ":", str(ep.port)),
                "listName": key,
                "listLength": str(args.list_length),
                "activationListLength": str(args.activation_list_length if activation is None else activation),
                "databaseIndex": str(args.redis_db),
                "enableTLS": "true" if ep.tls else "false",
            },
            "authenticationRef": {"name": cr_name(auth)},
        }

    # -- pods ---------------------------------------------------------------------------
    def _broker_env(self, args: CeleryWorkerArgs) -> list[dict[str, Any]]:
        """What the worker and the sweeper both need: Redis, queue, time limits, bounds."""
        return self._auth.env(args.endpoint, args.redis_db) + [
            {"name": "CELERY_QUEUE", "value": args.queue_name},
            {"name": "WORK_SECONDS_MIN", "value": kx.fmt_number(args.work_seconds_min)},
            {"name": "WORK_SECONDS_MAX", "value": kx.fmt_number(args.work_seconds_max)},
            {"name": "CELERY_VISIBILITY_TIMEOUT", "value": str(args.visibility_timeout_seconds)},
            {"name": "RESULT_TTL_SECONDS", "value": str(args.result_ttl_seconds)},
            {"name": "DEAD_LETTER_MAX_LENGTH", "value": str(args.dead_letter_max_length)},
        ]

    def _container(self, args: CeleryWorkerArgs, job: bool) -> dict[str, Any]:
        env = self._broker_env(args) + [
            {"name": "WORKER_METRICS_PORT", "value": str(versions.WORKER_METRICS_PORT)},
            {"name": "WORKER_CONCURRENCY", "value": str(args.concurrency)},
        ]
        if job:
            env.append({"name": "WORKER_IDLE_EXIT_SECONDS", "value": str(args.idle_exit_seconds)})
        health = ["python", "-m", "apps.worker.healthcheck"]
        return {
            "name": "worker",
            "image": args.image,
            "imagePullPolicy": args.image_pull_policy,
            "command": ["celery", "-A", "apps.worker.celery_app", "worker", "--loglevel=INFO"],
            "env": env,
            "ports": [{"name": "metrics", "containerPort": versions.WORKER_METRICS_PORT, "protocol": "TCP"}],
            "securityContext": kx.container_security_context(),
            "resources": kx.resources("100m", "192Mi", "500m", "512Mi"),
            # The healthcheck reads the worker's heartbeat file: no broker round trip, fast.
            "livenessProbe": kx.exec_probe(health, period=20, timeout=10, failures=3, initial=30),
            "readinessProbe": kx.exec_probe([*health, "--ready"], period=10, timeout=10, failures=3, initial=10),
            "volumeMounts": self._auth.mounts(),
        }

    def _pod_spec(self, args: CeleryWorkerArgs, sa, job: bool) -> dict[str, Any]:
        # Grace longer than the longest task: a SIGTERM'd worker finishes its task (warm shutdown).
        spec = kx.pod_spec(sa, [self._container(args, job)], grace_seconds=args.grace_seconds,
                           volumes=self._auth.volumes())
        if job:
            spec["restartPolicy"] = "Never"
        return spec

    def _create_deployment(self, name: str, args: CeleryWorkerArgs, sa) -> k8s.apps.v1.Deployment:
        return k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={
                "name": self.APP,
                "namespace": args.namespace,
                "labels": self._labels,
                "annotations": kx.checkov_skips(kx.APP_SKIPS),
            },
            # No "replicas": KEDA (through its HPA) owns the replica count.
            spec={
                "selector": {"matchLabels": self._labels},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {"metadata": {"labels": self._auth.pod_labels(self._labels)},
                             "spec": self._pod_spec(args, sa, job=False)},
            },
            opts=ResourceOptions(parent=self, ignore_changes=["spec.replicas"]),
        )

    def _create_sweeper(self, name: str, args: CeleryWorkerArgs, sa) -> k8s.apps.v1.Deployment:
        """job mode: one always-on pod that restores stranded tasks (kombu ``unacked``
        entries older than the visibility timeout, ``<queue>.inflight`` entries) to the
        queue, where the ScaledJob's trigger sees them. Not autoscaled."""
        labels = kx.labels(self.SWEEPER_APP, "sweeper")
        health = ["python", "-m", "apps.worker.healthcheck"]  # the sweeper writes the heartbeat file
        container = {
            "name": "sweeper",
            "image": args.image,
            "imagePullPolicy": args.image_pull_policy,
            "command": ["python", "-m", "apps.worker.sweeper"],
            "env": self._broker_env(args),
            "securityContext": kx.container_security_context(),
            "resources": kx.resources("20m", "96Mi", "200m", "192Mi"),
            "livenessProbe": kx.exec_probe(health, period=20, timeout=10, failures=3, initial=30),
            "readinessProbe": kx.exec_probe([*health, "--ready"], period=10, timeout=10, failures=3, initial=10),
            "volumeMounts": self._auth.mounts(),
        }
        return k8s.apps.v1.Deployment(
            f"{name}-sweeper",
            metadata={
                "name": self.SWEEPER_APP,
                "namespace": args.namespace,
                "labels": labels,
                "annotations": kx.checkov_skips(kx.APP_SKIPS),
            },
            spec={
                "replicas": 1,
                "selector": {"matchLabels": labels},
                # One sweeper at a time is enough; two would only race to restore.
                "strategy": {"type": "Recreate"},
                "template": {
                    "metadata": {"labels": self._auth.pod_labels(labels)},
                    "spec": kx.pod_spec(sa, [container], volumes=self._auth.volumes()),
                },
            },
            opts=ResourceOptions(parent=self),
        )

    def _create_scaled_job(self, name, args: CeleryWorkerArgs, sa, trigger, opts) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{name}-scaledjob",
            api_version=KEDA_API,
            kind="ScaledJob",
            metadata={"name": self.APP, "namespace": args.namespace, "labels": self._labels},
            spec={
                "jobTargetRef": {
                    "parallelism": 1,
                    "completions": 1,
                    "backoffLimit": 3,
                    "template": {"metadata": {"labels": self._auth.pod_labels(self._labels)},
                                 "spec": self._pod_spec(args, sa, job=True)},
                },
                "pollingInterval": args.polling_interval_seconds,
                "minReplicaCount": args.min_replicas,
                "maxReplicaCount": args.max_replicas,
                "successfulJobsHistoryLimit": args.successful_jobs_history_limit,
                "failedJobsHistoryLimit": args.failed_jobs_history_limit,
                # An update must not kill Jobs that are running tasks.
                "rollout": {"strategy": "gradual"},
                "scalingStrategy": {"strategy": args.job_scaling_strategy},
                "triggers": [trigger],
            },
            opts=opts,
        )
