"""Job mode never strands a task: an always-on ``worker-sweeper`` Deployment restores
kombu ``unacked`` and ``<queue>.inflight`` entries; deployment mode has none (its
ScaledObject's unacked trigger keeps a worker whose own sweep restores them)."""

from __future__ import annotations

import pytest

from tests.infra.validation import manifests, security
from tests.infra.validation.netpol import Cluster, Endpoint

SWEEPER = "worker-sweeper"
BROKER_ENV = ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD_FILE", "REDIS_SIGN_IN", "REDIS_TLS", "REDIS_DB", "CELERY_QUEUE",
              "CELERY_VISIBILITY_TIMEOUT", "RESULT_TTL_SECONDS", "DEAD_LETTER_MAX_LENGTH")
VARIANTS = [("local", {}), ("aks", {}), ("aks", {"azureRedis": "classic"}), ("aks", {"redisEntraAuth": "false"})]
IDS = ["local", "aks", "aks-classic", "aks-key"]


def _keyless(stack, extra) -> bool:
    """Azure Managed Redis with redisEntraAuth on (the aks default): the apps sign in with Entra."""
    return stack == "aks" and extra.get("azureRedis") != "classic" and extra.get("redisEntraAuth") != "false"


def _deployments(r) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in r.k8s("Deployment")}


def _worker_env(r) -> dict[str, dict]:
    (sj,) = r.k8s("ScaledJob")
    return {e["name"]: e for e in sj["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("stack, extra", VARIANTS, ids=IDS)
def test_sweeper_only_in_job_mode(rendered, stack, extra):
    assert SWEEPER not in _deployments(rendered(stack, workerMode="deployment", **extra))
    assert SWEEPER in _deployments(rendered(stack, workerMode="job", **extra))


@pytest.mark.parametrize("stack, extra", VARIANTS, ids=IDS)
def test_sweeper_pod(rendered, stack, extra):
    r = rendered(stack, workerMode="job", resultTtlSeconds="7200", deadLetterMaxLength="500",
                 visibilityTimeoutSeconds="300", **extra)
    dep = _deployments(r)[SWEEPER]
    spec = dep["spec"]
    assert spec["replicas"] == 1  # always on, not autoscaled
    assert not [o for o in r.k8s_objects if o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")
                and (o["spec"].get("scaleTargetRef") or {}).get("name") == SWEEPER]
    (c,) = spec["template"]["spec"]["containers"]
    assert c["image"] == r.config.worker_image
    assert c["command"] == ["python", "-m", "apps.worker.sweeper"]
    # Live while it waits for Redis, not ready (docs/worker.md, "Liveness and readiness").
    assert c["livenessProbe"]["exec"]["command"] == ["python", "-m", "apps.worker.healthcheck"]
    assert c["readinessProbe"]["exec"]["command"] == ["python", "-m", "apps.worker.healthcheck", "--ready"]
    env = {e["name"]: e for e in c["env"]}
    worker = _worker_env(r)
    for name in BROKER_ENV:
        assert env.get(name) == worker.get(name), name  # same Redis, queue, timeout and bounds as the worker
    assert (env["RESULT_TTL_SECONDS"]["value"], env["DEAD_LETTER_MAX_LENGTH"]["value"],
            env["CELERY_VISIBILITY_TIMEOUT"]["value"]) == ("7200", "500", "300")
    if _keyless(stack, extra):  # the worker's identity (same ServiceAccount), no key in the pod
        assert env["REDIS_SIGN_IN"]["value"] == "entra" and "REDIS_PASSWORD_FILE" not in env
        assert manifests.password_secret_ref(spec["template"]["spec"], c) is None
        assert spec["template"]["spec"]["serviceAccountName"] == "worker"
    else:
        assert manifests.password_secret_ref(spec["template"]["spec"], c) == {"name": "redis-auth", "key": "password"}
    assert "WORKER_IDLE_EXIT_SECONDS" not in env  # it never exits when idle
    res = c["resources"]
    assert res["limits"]["memory"] == "192Mi" and res["requests"]["cpu"] == "20m"  # small
    # restricted like every pod (the shared rules), and checkov-annotated like the worker
    assert security.check_pods([dep]) == []
    assert dep["metadata"]["annotations"] == _worker_annotations(rendered, stack, extra)


def _worker_annotations(rendered, stack, extra):
    return _deployments(rendered(stack, workerMode="deployment", **extra))["worker"]["metadata"]["annotations"]


@pytest.mark.parametrize("stack, extra", VARIANTS, ids=IDS)
def test_sweeper_reaches_redis_and_nothing_else(rendered, stack, extra):
    r = rendered(stack, workerMode="job", **extra)
    policies = r.k8s("NetworkPolicy")
    ns_labels = {o["metadata"]["name"]: o["metadata"].get("labels") or {} for o in r.k8s("Namespace")}
    cluster = Cluster(policies, ns_labels)
    tpl = [t for t in manifests.pod_templates(r.k8s_objects) if t.owner["metadata"]["name"] == SWEEPER][0]
    sweeper = Endpoint("sweeper", tpl.namespace, dict(tpl.labels))
    port = r.outputs["redisPort"]
    roles = security.find_roles(r.k8s_objects)
    if stack == "local":
        (redis,) = roles.redis
        assert cluster.allowed(sweeper, redis, 6379)
        assert not cluster.allowed(sweeper, redis, 6380)
    else:
        assert roles.redis_external
        outside = Endpoint("Azure Redis", external=True)
        assert cluster.egress_allowed(sweeper, outside, port)
        # HTTPS only for Entra tokens, when it signs in with them
        assert cluster.egress_allowed(sweeper, outside, 443) == _keyless(stack, extra)
    # nobody may connect to the sweeper
    other = Endpoint("a pod in another namespace", "other-ns", {})
    assert not cluster.ingress_allowed(other, sweeper, 8000)
    assert security.check_network_policies(r.k8s_objects) == []
