"""Both stacks x both worker modes under Pulumi mocks: what exists, what must be absent,
and the wiring between the pieces (endpoint -> pods and KEDA, secret -> pods and KEDA)."""

from __future__ import annotations

import math

import pulumi
import pytest

from components.cache_api import CacheApi, CacheApiArgs
from components.endpoint import RedisEndpoint
from components.worker import GRACE_MARGIN_SECONDS, CeleryWorker, CeleryWorkerArgs
from tests.infra.validation.manifests import password_secret_ref

STACKS = ("local", "aks")
MODES = ("deployment", "job")


def one(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def containers_of(obj):
    spec = obj["spec"]
    if obj["kind"] == "ScaledJob":
        return spec["jobTargetRef"]["template"]["spec"]["containers"]
    return spec["template"]["spec"]["containers"]


def pod_spec_of(obj):
    if obj["kind"] == "ScaledJob":
        return obj["spec"]["jobTargetRef"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def env_map(container):
    return {e["name"]: e for e in container.get("env", [])}


def worker_pod_owner(result):
    mode = result.config.worker_mode
    return one(result.k8s_objects, "Deployment" if mode == "deployment" else "ScaledJob", "worker")


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("mode", MODES)
def test_kinds_present_and_absent(rendered, stack, mode):
    r = rendered(stack, workerMode=mode)
    kinds = [o["kind"] for o in r.k8s_objects]
    for kind in ("Namespace", "Secret", "Service", "Deployment", "HorizontalPodAutoscaler",
                 "PodDisruptionBudget", "NetworkPolicy", "TriggerAuthentication"):
        assert kind in kinds, kind
    assert kinds.count("ScaledObject") == (1 if mode == "deployment" else 0)
    assert kinds.count("ScaledJob") == (1 if mode == "job" else 0)
    # redis-exporter: the monitoring component (tests/infra/test_monitoring.py)
    deployments = {o["metadata"]["name"] for o in r.k8s("Deployment")} - {"redis-exporter"}
    # job mode: no worker Deployment (Jobs), but the always-on sweeper (tests/infra/test_sweeper.py)
    assert deployments == ({"cache-api", "producer", "worker"} if mode == "deployment"
                           else {"cache-api", "producer", "worker-sweeper"})
    releases = [x for x in r.by_type("kubernetes:helm.sh/v3:Release") if x.inputs["chart"] != "kube-prometheus-stack"]
    assert len(releases) == 1 and releases[0].inputs["chart"] == "keda" and releases[0].inputs["version"] == "2.20.2"
    assert releases[0].inputs["repositoryOpts"]["repo"] == "https://kedacore.github.io/charts"


@pytest.mark.parametrize("mode", MODES)
def test_kind_has_no_azure_and_in_cluster_redis(rendered, mode):
    r = rendered("local", workerMode=mode)
    assert r.azure_resources == []
    assert not [x for x in r.resources if x.type.startswith("azure-native:")]
    sts = one(r.k8s_objects, "StatefulSet", "redis")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    # (Grafana's admin password: tests/infra/test_monitoring.py)
    assert len([x for x in r.by_type("random:index/randomPassword:RandomPassword") if "grafana" not in x.name]) == 1
    provider = r.by_type("pulumi:providers:kubernetes")[0]
    assert provider.inputs["context"] == "kind-redis-keda"


@pytest.mark.parametrize("mode", MODES)
def test_aks_has_no_in_cluster_redis(rendered, mode):
    r = rendered("aks", workerMode=mode)
    assert r.k8s("StatefulSet") == []
    assert r.k8s("PersistentVolumeClaim") == []
    assert [x for x in r.by_type("random:index/randomPassword:RandomPassword") if "grafana" not in x.name] == []
    assert not any(o["metadata"]["name"].startswith("redis-server") for o in r.k8s("Secret"))
    types = {a["type"] for a in r.azure_resources}
    assert {"azure-native:resources:ResourceGroup", "azure-native:containerservice:ManagedCluster",
            "azure-native:redisenterprise:RedisEnterprise", "azure-native:redisenterprise:Database"} <= types
    assert "azure-native:redis:Redis" not in types  # Azure Cache for Redis only on request


def _azure(r, type_):
    return [a for a in r.azure_resources if a["type"] == type_]


def test_azure_managed_redis_is_the_aks_default(rendered):
    r = rendered("aks")
    assert r.config.azure_redis == "managed"
    (cluster,) = _azure(r, "azure-native:redisenterprise:RedisEnterprise")
    (db,) = _azure(r, "azure-native:redisenterprise:Database")
    assert _azure(r, "azure-native:redis:Redis") == []
    c, d = cluster["properties"], db["properties"]
    assert c["minimumTlsVersion"] == "1.2" and c["highAvailability"] == "Enabled"
    assert c["sku"] == {"name": "Balanced_B0"}
    assert c["publicNetworkAccess"] in ("Enabled", "Disabled") and c["location"] == "westeurope"
    # kombu cannot use Redis Cluster; TLS only; a broker never evicts; KEDA needs the key
    assert d["clusteringPolicy"] == "NoCluster"
    assert d["clientProtocol"] == "Encrypted"
    assert d["evictionPolicy"] == "NoEviction"
    assert d["accessKeysAuthentication"] == "Enabled"
    assert d["port"] == 10000 and d["databaseName"] == "default"
    (cluster_res,) = r.by_type("azure-native:redisenterprise:RedisEnterprise")
    (db_res,) = r.by_type("azure-native:redisenterprise:Database")
    assert d["clusterName"] == cluster_res.outputs["name"] and cluster_res.urn in db_res.depends_on
    sku = rendered("aks", redisManagedSku="MemoryOptimized_M10")
    assert _azure(sku, "azure-native:redisenterprise:RedisEnterprise")[0]["properties"]["sku"] == {"name": "MemoryOptimized_M10"}


def test_managed_sku_default_is_a_real_sdk_sku():
    from pulumi_azure_native.redisenterprise import SkuName

    from components.config import load_config

    assert load_config({}).redis_managed_sku in {s.value for s in SkuName}


def test_azure_cache_for_redis_on_request(rendered):
    r = rendered("aks", azureRedis="classic")
    assert _azure(r, "azure-native:redisenterprise:RedisEnterprise") == []
    (cache,) = _azure(r, "azure-native:redis:Redis")
    cache = cache["properties"]
    assert cache["enableNonSslPort"] is False
    assert cache["minimumTlsVersion"] == "1.2"
    assert cache["sku"] == {"name": "Standard", "family": "C", "capacity": 1}
    assert cache["redisConfiguration"]["maxmemoryPolicy"] == "noeviction"
    assert r.outputs["redisKind"] == "azure-cache-for-redis"
    for access in ("Enabled", "Disabled"):
        for kind, type_ in (("classic", "azure-native:redis:Redis"), ("managed", "azure-native:redisenterprise:RedisEnterprise")):
            r2 = rendered("aks", azureRedis=kind, redisPublicNetworkAccess=access)
            assert _azure(r2, type_)[0]["properties"]["publicNetworkAccess"] == access


AKS_VARIANTS = [("aks", {}), ("aks", {"azureRedis": "classic"})]


@pytest.mark.parametrize("stack, extra", [("local", {})] + AKS_VARIANTS, ids=["local", "aks-managed", "aks-classic"])
@pytest.mark.parametrize("mode", MODES)
def test_every_client_and_trigger_names_the_same_endpoint(rendered, stack, extra, mode):
    """worker, producer and cache API env, every KEDA trigger and the stack outputs: one
    host, port and TLS flag (all from the one RedisEndpoint)."""
    r = rendered(stack, workerMode=mode, **extra)
    expected = (r.outputs["redisHost"], str(r.outputs["redisPort"]), "true" if r.outputs["redisTls"] else "false")
    seen = 0
    for obj in r.k8s_objects:
        if obj["kind"] not in ("Deployment", "ScaledJob"):
            continue
        for c in containers_of(obj):
            env = env_map(c)
            if "REDIS_HOST" in env:
                assert (env["REDIS_HOST"]["value"], env["REDIS_PORT"]["value"], env["REDIS_TLS"]["value"]) == expected, obj["metadata"]["name"]
                seen += 1
    assert seen >= 3
    triggers = [t for o in r.k8s_objects if o["kind"] in ("ScaledObject", "ScaledJob") for t in o["spec"]["triggers"]]
    assert len(triggers) == (2 if mode == "deployment" else 1)
    for t in triggers:
        assert t["metadata"]["address"] == f"{expected[0]}:{expected[1]}"
        assert t["metadata"]["enableTLS"] == expected[2]


def test_aks_cluster_hardening(rendered):
    r = rendered("aks", kubernetesVersion="1.32")
    aks = [a for a in r.azure_resources if a["type"] == "azure-native:containerservice:ManagedCluster"][0]["properties"]
    assert aks["kubernetesVersion"] == "1.32"
    assert aks["enableRBAC"] is True
    assert aks["aadProfile"]["enableAzureRBAC"] is True and aks["aadProfile"]["managed"] is True
    assert aks["disableLocalAccounts"] is True
    assert aks["networkProfile"]["networkPolicy"] in ("azure", "cilium", "calico")
    assert aks["identity"]["type"] == "SystemAssigned"
    pools = {p["name"]: p for p in aks["agentPoolProfiles"]}
    assert pools["system"]["mode"] == "System" and pools["user"]["mode"] == "User"
    assert all(p["orchestratorVersion"] == "1.32" for p in pools.values())
    assert pools["user"]["enableAutoScaling"] is True


def test_acr_and_acr_pull_only_when_asked(rendered):
    with_acr = rendered("aks")  # the aks stack file sets createAcr: true
    assert with_acr.config.create_acr is True
    names = [a["name"] for a in with_acr.azure_resources]
    assert "aks-acr" in names and "aks-acr-pull" in names
    pull = [a for a in with_acr.azure_resources if a["name"] == "aks-acr-pull"][0]["properties"]
    assert pull["roleDefinitionId"].endswith("/7f951dda-4ed3-4680-a7ca-43fe172d538d")
    assert pull["principalId"] == "22222222-2222-2222-2222-222222222222"  # the kubelet identity (mock)
    acr = [a for a in with_acr.azure_resources if a["name"] == "aks-acr"][0]["properties"]
    assert acr["registryName"].isalnum() and acr["registryName"].startswith("rkpacr")
    assert acr["adminUserEnabled"] is False
    without = rendered("aks", createAcr="false")
    assert not [a for a in without.azure_resources if "acr" in a["name"]]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("mode", MODES)
def test_autoscaled_deployments_set_no_replicas(rendered, stack, mode):
    r = rendered(stack, workerMode=mode)
    for dep in r.k8s("Deployment"):
        name = dep["metadata"]["name"]
        if name in ("worker", "cache-api"):
            assert "replicas" not in dep["spec"], name
    assert one(r.k8s_objects, "Deployment", "producer")["spec"]["replicas"] == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("work_max", ["10", "300", "2.5"])
def test_worker_grace_exceeds_longest_task(rendered, mode, work_max):
    r = rendered("local", workerMode=mode, workSecondsMax=work_max, visibilityTimeoutSeconds="400")
    spec = pod_spec_of(worker_pod_owner(r))
    assert spec["terminationGracePeriodSeconds"] > float(work_max)
    assert spec["terminationGracePeriodSeconds"] >= math.ceil(float(work_max)) + GRACE_MARGIN_SECONDS
    env = env_map(containers_of(worker_pod_owner(r))[0])
    assert float(env["WORK_SECONDS_MAX"]["value"]) == float(work_max)
    assert env["CELERY_VISIBILITY_TIMEOUT"]["value"] == "400"


PORTS = {"local": "6379", "aks": "10000", "aks-classic": "6380"}


@pytest.mark.parametrize("variant", ["local", "aks", "aks-classic"])
@pytest.mark.parametrize("mode", MODES)
def test_keda_trigger_uses_the_pods_endpoint(rendered, variant, mode):
    stack = variant.split("-")[0]
    r = rendered(stack, workerMode=mode, **({"azureRedis": "classic"} if variant == "aks-classic" else {}))
    scaled = one(r.k8s_objects, "ScaledObject" if mode == "deployment" else "ScaledJob", "worker")
    triggers = scaled["spec"]["triggers"]
    trigger = triggers[0]
    assert trigger["name"] == "queue"
    if mode == "deployment":
        # second trigger: kombu's unacked hash, same endpoint/auth, so a killed pod's task
        # keeps one worker up until the sweep restores it (job mode: queue only)
        (recovery,) = triggers[1:]
        assert recovery["name"] == "unacked" and recovery["metadata"]["listName"] == "unacked"
        assert recovery["authenticationRef"] == trigger["authenticationRef"]
        assert recovery["metadata"]["activationListLength"] == "0"
        same = lambda md: {k: v for k, v in md.items() if k not in ("listName", "activationListLength")}  # noqa: E731
        assert same(recovery["metadata"]) == same(trigger["metadata"])
    else:
        assert len(triggers) == 1
    meta = trigger["metadata"]
    env = env_map(containers_of(worker_pod_owner(r))[0])
    assert trigger["type"] == "redis"
    assert meta["address"] == f"{env['REDIS_HOST']['value']}:{env['REDIS_PORT']['value']}"
    assert meta["enableTLS"] == env["REDIS_TLS"]["value"]
    assert meta["enableTLS"] == ("true" if stack == "aks" else "false")
    assert env["REDIS_PORT"]["value"] == PORTS[variant]
    assert meta["listName"] == env["CELERY_QUEUE"]["value"] == "celery"
    assert meta["databaseIndex"] == env["REDIS_DB"]["value"] == "0"
    assert meta["listLength"] == "5" and meta["activationListLength"] == "0"
    assert all(isinstance(v, str) for v in meta.values())
    assert "password" not in meta and "passwordFromEnv" not in meta
    # the TriggerAuthentication reads the same Secret key the pods read
    ta = one(r.k8s_objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    (ref,) = ta["spec"]["secretTargetRef"]
    owner = worker_pod_owner(r)
    pod_ref = password_secret_ref(pod_spec_of(owner), containers_of(owner)[0])
    if env.get("REDIS_SIGN_IN", {}).get("value") == "entra":
        # keyless pods (aks, Azure Managed Redis): KEDA alone reads the key
        assert pod_ref is None and stack == "aks"
        assert ref == {"parameter": "password", "name": "redis-auth", "key": "password"}
        one(r.k8s_objects, "Secret", ref["name"])
        return
    assert ref == {"parameter": "password", "name": pod_ref["name"], "key": pod_ref["key"]}
    one(r.k8s_objects, "Secret", pod_ref["name"])


def test_scaled_object_fields(rendered):
    r = rendered("local", workerMaxReplicas="7", cooldownSeconds="45", pollingIntervalSeconds="3",
                 queueName="jobs", listLength="3", activationListLength="2")
    so = one(r.k8s_objects, "ScaledObject", "worker")["spec"]
    assert so["minReplicaCount"] == 0 and so["maxReplicaCount"] == 7
    assert so["cooldownPeriod"] == 45 and so["pollingInterval"] == 3
    assert so["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}
    meta = so["triggers"][0]["metadata"]
    assert (meta["listName"], meta["listLength"], meta["activationListLength"]) == ("jobs", "3", "2")
    # the recovery trigger wakes a worker for any stranded task, whatever the activation threshold
    recovery = so["triggers"][1]["metadata"]
    assert (recovery["listName"], recovery["listLength"], recovery["activationListLength"]) == ("unacked", "3", "0")
    env = env_map(containers_of(one(r.k8s_objects, "Deployment", "worker"))[0])
    assert env["CELERY_QUEUE"]["value"] == "jobs"
    assert "WORKER_IDLE_EXIT_SECONDS" not in env  # only Jobs exit when idle


def test_scaled_job_fields(rendered):
    r = rendered("local", workerMode="job", workerIdleExitSeconds="42", workerMaxReplicas="9")
    sj = one(r.k8s_objects, "ScaledJob", "worker")["spec"]
    assert sj["maxReplicaCount"] == 9 and sj["minReplicaCount"] == 0
    assert sj["scalingStrategy"]["strategy"] == "accurate"
    assert sj["successfulJobsHistoryLimit"] >= 1 and sj["failedJobsHistoryLimit"] >= 1
    assert sj["rollout"]["strategy"] == "gradual"
    template = sj["jobTargetRef"]["template"]["spec"]
    assert template["restartPolicy"] in ("Never", "OnFailure")
    (c,) = template["containers"]
    assert env_map(c)["WORKER_IDLE_EXIT_SECONDS"]["value"] == "42"
    assert c["command"][:3] == ["celery", "-A", "apps.worker.celery_app"]


def test_contract_commands_ports_probes(rendered):
    r = rendered("local")
    api = one(r.k8s_objects, "Deployment", "cache-api")
    (c,) = containers_of(api)
    # The image's server flags follow (tests/test_contract.py: the command is the image's CMD).
    assert c["command"][:6] == ["uvicorn", "apps.cache_api.main:app", "--host", "0.0.0.0", "--port", "8000"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {p["containerPort"] for p in c["ports"]} == {8000}
    assert env_map(c)["CACHE_TTL_SECONDS"]["value"] == "300"
    (w,) = containers_of(one(r.k8s_objects, "Deployment", "worker"))
    assert w["livenessProbe"]["exec"]["command"] == ["python", "-m", "apps.worker.healthcheck"]
    assert w["readinessProbe"]["exec"]["command"] == ["python", "-m", "apps.worker.healthcheck", "--ready"]
    steady = rendered("local", producerRate="0.5")
    (p,) = containers_of(one(steady.k8s_objects, "Deployment", "producer"))
    assert p["command"] == ["python", "-m", "apps.producer", "--forever", "--rate", "0.5"]
    assert p["livenessProbe"]["exec"]["command"] == ["python", "-m", "apps.producer.healthcheck"]
    assert p["readinessProbe"]["exec"]["command"] == ["python", "-m", "apps.producer.healthcheck", "--ready"]
    # The local stack's own: standby, so the fleet idles at zero until `make load` (0 -> N -> 0).
    (p0,) = containers_of(one(r.k8s_objects, "Deployment", "producer"))
    assert p0["command"] == ["python", "-m", "apps.producer", "--standby"]


def test_cache_api_hpa_pdb_service(rendered):
    r = rendered("local", cacheApiMinReplicas="3", cacheApiMaxReplicas="8", cacheApiCpuTargetPercent="60")
    hpa = one(r.k8s_objects, "HorizontalPodAutoscaler", "cache-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cache-api"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 8)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["averageUtilization"] == 60
    pdb = one(r.k8s_objects, "PodDisruptionBudget", "cache-api")
    api = one(r.k8s_objects, "Deployment", "cache-api")
    assert pdb["spec"]["selector"]["matchLabels"] == api["spec"]["selector"]["matchLabels"]
    svc = one(r.k8s_objects, "Service", "cache-api")
    assert svc["spec"]["ports"][0]["port"] == 8000
    assert svc["spec"]["selector"] == api["spec"]["template"]["metadata"]["labels"]


def test_read_path_sidecar_vs_central(rendered):
    central = rendered("local")
    (c,) = containers_of(one(central.k8s_objects, "Deployment", "cache-api"))
    assert "REDIS_READ_HOST" not in env_map(c) and "REDIS_READ_PORT" not in env_map(c)

    side = rendered("local", cacheApiReadPath="replica-sidecar")
    containers = {x["name"]: x for x in containers_of(one(side.k8s_objects, "Deployment", "cache-api"))}
    assert set(containers) == {"api", "redis-replica"}
    api_env = env_map(containers["api"])
    assert api_env["REDIS_READ_HOST"]["value"] == "127.0.0.1" and api_env["REDIS_READ_PORT"]["value"] == "6379"
    rep = containers["redis-replica"]
    script = rep["command"][-1]
    assert "--replicaof" in script and "--bind 127.0.0.1" in script
    rep_env = env_map(rep)
    assert rep_env["REDIS_PRIMARY_HOST"]["value"] == api_env["REDIS_HOST"]["value"]
    pod = one(side.k8s_objects, "Deployment", "cache-api")["spec"]["template"]["spec"]
    assert rep_env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == password_secret_ref(pod, containers["api"])
    assert rep_env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"]["name"] == "redis-auth"


def test_redis_statefulset_probe_uses_env_not_argv(rendered):
    r = rendered("local")
    (c,) = containers_of(one(r.k8s_objects, "StatefulSet", "redis"))
    env = env_map(c)
    assert env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"]["key"] == "password"
    for probe in ("livenessProbe", "readinessProbe"):
        cmd = " ".join(c[probe]["exec"]["command"])
        assert "redis-cli" in cmd and " -a " not in cmd and "$REDIS" not in cmd
    assert "requirepass" in c["command"][-1] and "--requirepass" not in c["command"][-1]


# ---- components under the mocks fixture, the canonical @pulumi.runtime.test style -------------
def _endpoint(tls: bool) -> RedisEndpoint:
    return RedisEndpoint(host=pulumi.Output.from_input("r.example"), port=6380 if tls else 6379, tls=tls,
                         password=pulumi.Output.secret("pw"))


@pulumi.runtime.test
def test_worker_component_outputs(pulumi_mocks):
    release = pulumi.CustomResource("kubernetes:helm.sh/v3:Release", "fake-keda", {})
    worker = CeleryWorker("w", CeleryWorkerArgs(
        namespace="ns", endpoint=_endpoint(True), secret_name="redis-auth", keda_release=release,
        image="repo/worker:1", mode="job",
    ))

    def check(args):
        name, dep = args
        assert name == "worker" and dep == ""
        assert worker.scaled_kind == "ScaledJob"
        sj = [x for x in pulumi_mocks.recorded if x.type == "kubernetes:keda.sh/v1alpha1:ScaledJob"][0]
        assert sj.inputs["spec"]["triggers"][0]["metadata"]["enableTLS"] == "true"
        release_urn = [x.urn for x in pulumi_mocks.recorded if x.name == "fake-keda"][0]
        assert release_urn in sj.depends_on

    return pulumi.Output.all(worker.scaled_name, worker.deployment_name).apply(check)


@pytest.mark.parametrize("bad, message", [
    (dict(mode="cronjob"), "mode"),
    (dict(min_replicas=5, max_replicas=2), "max_replicas"),
    (dict(work_seconds_min=5, work_seconds_max=1), "work_seconds_max"),
    (dict(visibility_timeout_seconds=5, work_seconds_max=10), "visibility_timeout_seconds"),
    # above the max but not above the worker's hard limit ceil(9.5) + 5 = 15: the worker would refuse
    (dict(visibility_timeout_seconds=15, work_seconds_max=9.5), "hard time limit, ceil"),
    (dict(queue_name=""), "queue_name"),
])
def test_worker_args_validate(bad, message):
    base = dict(namespace="ns", endpoint=_endpoint(False), secret_name="s", keda_release=None, image="r/w:1")
    with pytest.raises(ValueError, match=message):
        CeleryWorkerArgs(**{**base, **bad})


def test_sidecar_refuses_tls_endpoint_and_unsized_primary():
    import dataclasses

    sized = dataclasses.replace(_endpoint(False), maxmemory_bytes=64 * 1024 * 1024)
    with pytest.raises(ValueError, match="read_path"):
        CacheApiArgs(namespace="ns", endpoint=dataclasses.replace(_endpoint(True), maxmemory_bytes=1), secret_name="s",
                     image="r/a:1", read_path="replica-sidecar")
    with pytest.raises(ValueError, match="maxmemory"):  # cannot size the replica
        CacheApiArgs(namespace="ns", endpoint=_endpoint(False), secret_name="s", image="r/a:1", read_path="replica-sidecar")
    CacheApiArgs(namespace="ns", endpoint=sized, secret_name="s", image="r/a:1", read_path="replica-sidecar")
    assert CacheApi  # imported for the type
