"""Stack outputs: the names the Makefile, scripts and CI read, per target and mode."""

from __future__ import annotations

import pytest

EXPECTED = {
    "target", "namespace", "cacheApiService", "cacheApiServiceName", "cacheApiDeploymentName",
    "redisKind", "redisHost", "redisPort", "redisTls", "kubeconfig", "workerMode", "workerScaledKind",
    "workerScaledObjectName", "workerDeploymentName", "producerDeploymentName",
    # monitoring (on by default; "" and no password when off: tests/infra/test_monitoring.py)
    "monitoringNamespace", "prometheusService", "grafanaService", "grafanaAdminPassword",
}


@pytest.mark.parametrize("stack", ["local", "aks"])
@pytest.mark.parametrize("mode", ["deployment", "job"])
def test_output_names_and_values(rendered, stack, mode):
    r = rendered(stack, workerMode=mode)
    out = r.outputs
    assert set(out) == EXPECTED
    assert out["cacheApiService"] == "cache-api.platform.svc.cluster.local:8000"
    assert out["cacheApiServiceName"] == "cache-api" and out["cacheApiDeploymentName"] == "cache-api"
    assert out["namespace"] == "platform"
    assert out["workerMode"] == mode
    assert out["workerScaledObjectName"] == "worker"
    assert out["workerScaledKind"] == ("ScaledObject" if mode == "deployment" else "ScaledJob")
    assert out["workerDeploymentName"] == ("worker" if mode == "deployment" else "")
    assert out["producerDeploymentName"] == "producer"
    scaled = [o for o in r.k8s_objects if o["kind"] == out["workerScaledKind"]]
    assert [o["metadata"]["name"] for o in scaled] == [out["workerScaledObjectName"]]


def test_redis_host_per_target(rendered):
    local, aks, classic = rendered("local"), rendered("aks"), rendered("aks", azureRedis="classic")
    assert (local.outputs["redisHost"], local.outputs["redisPort"], local.outputs["redisTls"]) == (
        "redis.platform.svc.cluster.local", 6379, False)
    # Azure Managed Redis: <cluster>.<region>.redis.azure.net, TLS on 10000
    assert aks.outputs["redisHost"] == "redis-cluster.westeurope.redis.azure.net"
    assert (aks.outputs["redisPort"], aks.outputs["redisTls"]) == (10000, True)
    assert classic.outputs["redisHost"].endswith(".redis.cache.windows.net")
    assert (classic.outputs["redisPort"], classic.outputs["redisTls"]) == (6380, True)
    assert local.outputs["target"] == "kind" and aks.outputs["target"] == "aks"
    assert (local.outputs["redisKind"], aks.outputs["redisKind"], classic.outputs["redisKind"]) == (
        "in-cluster", "azure-managed-redis", "azure-cache-for-redis")


def test_namespace_override_flows_everywhere(rendered):
    r = rendered("local", namespace="demo")
    assert r.outputs["namespace"] == "demo"
    assert r.outputs["cacheApiService"] == "cache-api.demo.svc.cluster.local:8000"
    assert r.outputs["redisHost"] == "redis.demo.svc.cluster.local"
    app_objs = [o for o in r.k8s_objects if o["kind"] not in ("Namespace",)
                and o["metadata"].get("namespace") not in ("keda", "monitoring")]
    assert app_objs and all(o["metadata"]["namespace"] == "demo" for o in app_objs)
    # Two releases (KEDA, kube-prometheus-stack) register in no fixed order: pick by chart.
    [release] = [x for x in r.by_type("kubernetes:helm.sh/v3:Release") if x.inputs["chart"] == "keda"]
    assert release.inputs["values"]["watchNamespace"] == "demo"
