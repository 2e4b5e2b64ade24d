"""redis_exporter: Redis itself, and the lengths of the keys that tell the queue's story.

One Deployment in the app namespace (it reads the ``redis-auth`` Secret there), pointed at
the one RedisEndpoint: ``redis://host:port`` in-cluster, ``rediss://host:port`` (TLS,
verified against the image's CA bundle) on Azure. ``CONFIG`` is never called
(``REDIS_EXPORTER_CONFIG_COMMAND=-``): Azure Cache for Redis and Azure Managed Redis
block it. Single keys exported (``redis_key_size{key=...}``: LLEN for a list, HLEN for a
hash, 0 when absent): the queue, ``<queue>.inflight``, ``<queue>.dead_letter`` and
kombu's ``unacked`` hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi import Output, ResourceOptions

from components import k8s as kx
from components import versions
from components.endpoint import RedisEndpoint

#: checkov checks that do not apply to the exporter (docs/security.md lists them).
EXPORTER_SKIPS = {
    "CKV_K8S_43": "redis_exporter is pinned by its release tag in components/versions.py; no digest is recorded for the public image",
    "CKV_K8S_35": "redis_exporter reads the Redis password from REDIS_PASSWORD (its password file is a JSON map, not a Secret key); it comes from the redis-auth Secret via secretKeyRef and is never a literal",
}


def queue_keys(queue: str, dead_letter: str, unacked: str) -> list[str]:
    """The keys whose length tells the queue's story: the list KEDA watches, the worker's
    ``<queue>.inflight`` list, its dead-letter list and kombu's unacked hash."""
    return [queue, f"{queue}.inflight", dead_letter, unacked]


def check_single_keys(db: int, keys: Sequence[str]) -> str:
    """``REDIS_EXPORTER_CHECK_SINGLE_KEYS``: ``db<N>=key,...`` (no SCAN: direct lookups)."""
    for key in keys:
        if not key or "," in key or any(c.isspace() for c in key):
            raise ValueError(f"redis_exporter key {key!r} must be non-empty, without commas or spaces")
    return ",".join(f"db{db}={key}" for key in keys)


@dataclass(frozen=True, kw_only=True)
class RedisExporterArgs:
    namespace: pulumi.Input[str]
    """App namespace (where the Redis password Secret is)."""
    endpoint: RedisEndpoint
    """The Redis the apps and KEDA use."""
    secret_name: pulumi.Input[str]
    """Secret with the Redis password (key ``password``)."""
    keys: Sequence[str]
    """Keys whose length is exported (the queue, its inflight and dead-letter lists, ``unacked``)."""
    redis_db: int = 0
    """Database index of those keys."""
    image: str = versions.REDIS_EXPORTER_IMAGE
    """redis_exporter image (pinned)."""

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("RedisExporterArgs.keys must not be empty")
        check_single_keys(self.redis_db, self.keys)


class RedisExporter(pulumi.ComponentResource):
    """ServiceAccount + Deployment; a PodMonitor (monitoring component) scrapes port ``metrics``."""

    APP = "redis-exporter"
    deployment_name: Output[str]

    def __init__(self, name: str, args: RedisExporterArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:RedisExporter", name, None, opts)
        lbl = kx.labels(self.APP)
        sa = kx.service_account(name, self.APP, args.namespace, lbl, self)
        ep = args.endpoint
        scheme = "rediss" if ep.tls else "redis"
        uid = versions.REDIS_EXPORTER_UID
        health = {"path": "/health", "port": "metrics"}
        container = {
            "name": "redis-exporter",
            "image": args.image,
            # A public image on both targets (not kind-loaded): Always re-checks the pinned tag.
            "imagePullPolicy": "Always",
            "env": [
                {"name": "REDIS_ADDR", "value": Output.concat(scheme, "://", ep.host, ":", str(ep.port))},
                kx.secret_env("REDIS_PASSWORD", args.secret_name),
                {"name": "REDIS_EXPORTER_CHECK_SINGLE_KEYS", "value": check_single_keys(args.redis_db, args.keys)},
                # Azure Redis blocks CONFIG: never call it.
                {"name": "REDIS_EXPORTER_CONFIG_COMMAND", "value": "-"},
                {"name": "REDIS_EXPORTER_WEB_LISTEN_ADDRESS", "value": f":{versions.REDIS_EXPORTER_PORT}"},
                {"name": "REDIS_EXPORTER_CONNECTION_TIMEOUT", "value": "5s"},
            ],
            "ports": [{"name": "metrics", "containerPort": versions.REDIS_EXPORTER_PORT, "protocol": "TCP"}],
            "securityContext": kx.container_security_context(uid),
            "resources": kx.resources("10m", "32Mi", "100m", "64Mi"),
            "livenessProbe": {"httpGet": health, "initialDelaySeconds": 5, "periodSeconds": 20,
                              "timeoutSeconds": 3, "failureThreshold": 3},
            "readinessProbe": {"httpGet": health, "initialDelaySeconds": 2, "periodSeconds": 10,
                               "timeoutSeconds": 3, "failureThreshold": 3},
        }
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={
                "name": self.APP,
                "namespace": args.namespace,
                "labels": lbl,
                "annotations": kx.checkov_skips(EXPORTER_SKIPS),
            },
            spec={
                "replicas": 1,
                "selector": {"matchLabels": lbl},
                "template": {
                    "metadata": {"labels": lbl},
                    "spec": kx.pod_spec(sa, [container], grace_seconds=10, uid=uid),
                },
            },
            opts=ResourceOptions(parent=self),
        )
        self.deployment_name = deployment.metadata.name
        self.register_outputs({"deploymentName": self.deployment_name})
