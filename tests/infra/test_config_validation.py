"""Stack config: one pydantic model, validated once in __main__.py before any resource.

Invalid config must fail with a message that names the key, and the Pulumi program must
not have registered a single resource by then (asserted on the recording monitor)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pulumi
import pytest
import yaml
from pulumi.runtime import settings

from components.config import PROJECT, ConfigError, load_config, raw_pulumi_config
from tools.render import offline_config
from tools.render_mocks import RecordingMocks, RecordingMonitor
from tools.variants import RENDER_PLACEHOLDERS

ROOT = Path(__file__).resolve().parents[2]

INVALID = [
    # (overrides, key that the message must name, fragment of the message)
    ({"colour": "blue"}, "colour", "unknown config key"),
    ({"workerMod": "job"}, "workerMod", "unknown config key (did you mean 'workerMode'?)"),
    ({"workerMinReplicas": "5", "workerMaxReplicas": "2"}, "workerMaxReplicas", "less than workerMinReplicas"),
    ({"cacheApiMinReplicas": "4", "cacheApiMaxReplicas": "3"}, "cacheApiMaxReplicas", "less than cacheApiMinReplicas"),
    ({"target": "aks", "cacheApiReadPath": "replica-sidecar"}, "cacheApiReadPath", "in-cluster Redis"),
    ({"cacheTtlSeconds": "-1"}, "cacheTtlSeconds", "greater than or equal"),
    ({"workerImage": "worker"}, "workerImage", "not pinned"),
    ({"workerImage": "repo/worker:latest"}, "workerImage", "latest"),
    ({"cacheApiImage": "Not A Ref"}, "cacheApiImage", "not a valid image reference"),
    ({"queueName": ""}, "queueName", "must not be empty"),
    ({"queueName": "two words"}, "queueName", "whitespace"),
    ({"workSecondsMin": "5", "workSecondsMax": "2"}, "workSecondsMax", "less than workSecondsMin"),
    ({"visibilityTimeoutSeconds": "10", "workSecondsMax": "10"}, "visibilityTimeoutSeconds", "must exceed workSecondsMax"),
    # the worker refuses a timeout at or below its hard limit, ceil(max) + 5: infra must too
    ({"visibilityTimeoutSeconds": "15", "workSecondsMax": "9.5"}, "visibilityTimeoutSeconds", "hard task time limit (15 s)"),
    ({"target": "gke"}, "target", "'aks' or 'kind'"),
    ({"workerMode": "cron"}, "workerMode", "'deployment' or 'job'"),
    ({"namespace": "Bad_NS"}, "namespace", "DNS-1123"),
    ({"workerMaxReplicas": "many"}, "workerMaxReplicas", "integer"),
    ({"redisStorageSize": "lots"}, "redisStorageSize", "storage quantity"),
    ({"kubernetesVersion": "latest"}, "kubernetesVersion", "Kubernetes version"),
    ({"listLength": "0"}, "listLength", "greater than or equal to 1"),
    ({"activationListLength": "-1"}, "activationListLength", "greater than or equal to 0"),
    ({"userNodeMinCount": "4", "userNodeMaxCount": "2"}, "userNodeMaxCount", "less than userNodeMinCount"),
    ({"imagePullPolicy": "Sometimes"}, "imagePullPolicy", "IfNotPresent"),
    ({"producerRate": "-0.5"}, "producerRate", "greater than or equal to 0"),
    ({"producerRate": "1e300"}, "producerRate", "less than or equal to 1000"),
    ({"azureRedis": "enterprise"}, "azureRedis", "'managed' or 'classic'"),
    ({"redisManagedSku": "Enterprise_E10"}, "redisManagedSku", "not an Azure Managed Redis SKU"),
    ({"redisManagedSku": "Balanced"}, "redisManagedSku", "not an Azure Managed Redis SKU"),
    ({"deployerPrincipalType": "Robot"}, "deployerPrincipalType", "'User', 'ServicePrincipal' or 'Group'"),
]


@pytest.mark.parametrize("overrides, key, fragment", INVALID, ids=[c[1] + "-" + str(i) for i, c in enumerate(INVALID)])
def test_invalid_config_names_the_key(overrides, key, fragment):
    with pytest.raises(ConfigError) as err:
        load_config({f"{PROJECT}:{k}": v for k, v in overrides.items()})
    msg = str(err.value)
    assert f"{PROJECT}:{key}:" in msg
    assert fragment in msg
    assert "\n" not in msg


@pytest.mark.parametrize("key, expected", [
    ("redis-keda-platfrom:workerMode", "unknown config namespace 'redis-keda-platfrom' (did you mean 'redis-keda-platform'?)"),
    ("azure-nativ:location", "unknown config namespace 'azure-nativ' (did you mean 'azure-native'?)"),
    ("mystack:workerMode", "unknown config namespace 'mystack': this stack reads redis-keda-platform:<key>"),
])
def test_a_key_in_a_namespace_nobody_reads_is_refused_not_ignored(key, expected):
    """A typo in the namespace used to deploy the defaults silently."""
    with pytest.raises(ConfigError) as err:
        load_config({key: "job"})
    assert expected in str(err.value) and key in str(err.value)
    assert "\n" not in str(err.value)


def test_provider_settings_pass():
    cfg = load_config({"kubernetes:context": "kind-x", "azure-native:location": "westeurope",
                       "random:x": "1", "pulumi:tags": "{}"})
    assert cfg.worker_mode == "deployment"


def test_several_problems_reported_together():
    with pytest.raises(ConfigError) as err:
        load_config({"colour": "x", "queueName": ""})
    keys = {k for k, _ in err.value.problems}
    assert keys == {"colour", "queueName"}


def test_defaults_are_secure_and_working():
    cfg = load_config({})
    assert cfg.target == "kind" and cfg.worker_mode == "deployment" and cfg.cache_api_read_path == "central"
    assert cfg.kubeconfig_context == "kind-redis-keda"
    assert cfg.queue_name == "celery" and cfg.worker_min_replicas == 0
    assert cfg.visibility_timeout_seconds > cfg.work_seconds_max
    assert cfg.work_seconds_min == 1 and cfg.work_seconds_max == 10
    assert cfg.create_acr is False


def test_other_namespaces_are_not_ours():
    cfg = load_config({"kubernetes:context": "x", "azure-native:location": "westus", f"{PROJECT}:workerMode": "job"})
    assert cfg.worker_mode == "job"


def test_string_values_from_the_engine_are_coerced():
    cfg = load_config({f"{PROJECT}:workerMaxReplicas": "12", f"{PROJECT}:createAcr": "true",
                       f"{PROJECT}:workSecondsMax": "2.5", f"{PROJECT}:kubernetesVersion": 1.33})
    assert cfg.worker_max_replicas == 12 and cfg.create_acr is True and cfg.work_seconds_max == 2.5
    assert cfg.kubernetes_version == "1.33"


# ---- Pulumi.yaml and the stack files: tests/infra/test_config_keys.py -----------------------
@pytest.mark.parametrize("stack, target", [("local", "kind"), ("aks", "aks")])
def test_stack_files_are_valid(stack, target):
    doc = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())
    assert all(k.startswith(f"{PROJECT}:") for k in doc["config"])
    assert load_config(offline_config(stack)).target == target


def test_the_aks_stack_file_leaves_the_api_server_ranges_to_the_deployer():
    """pulumi up on the committed aks stack stops, before any resource, until the deployer
    says who may reach the API server; with their ranges it passes."""
    doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.aks.yaml").read_text())
    with pytest.raises(ConfigError) as err:
        load_config(doc["config"])
    [(key, message)] = err.value.problems
    assert key == "apiServerAuthorizedIpRanges" and "pulumi config set apiServerAuthorizedIpRanges" in message
    ranges = "198.51.100.7/32, 203.0.113.0/24"
    cfg = load_config({**doc["config"], f"{PROJECT}:apiServerAuthorizedIpRanges": ranges})
    assert cfg.api_server_authorized_ip_ranges == ranges
    private = load_config({**doc["config"], f"{PROJECT}:apiServerAccess": "private"})
    assert private.api_server_access == "private"


def test_raw_pulumi_config_enumerates_engine_config(monkeypatch):
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({f"{PROJECT}:fromEnv": "1"}))
    pulumi.runtime.set_all_config({f"{PROJECT}:workerMode": "job", "kubernetes:context": "c"})
    try:
        raw = raw_pulumi_config()
        assert raw[f"{PROJECT}:workerMode"] == "job"
        assert raw[f"{PROJECT}:fromEnv"] == "1"
        with pytest.raises(ConfigError, match=f"{PROJECT}:fromEnv: unknown config key"):
            load_config(raw)
    finally:
        pulumi.runtime.set_all_config({})


# ---- the real entry point under mocks ---------------------------------------------------------
def _run_main(config: dict[str, str]) -> tuple[RecordingMonitor, BaseException | None]:
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    settings.reset_options()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="test", preview=False, monitor=monitor)
    pulumi.runtime.set_all_config({f"{PROJECT}:{k}": v for k, v in config.items()})
    error: BaseException | None = None
    try:
        loop = pulumi.runtime.stack.asyncio.get_event_loop()
        loop.run_until_complete(pulumi.runtime.stack.run_pulumi_func(
            lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        error = exc
    finally:
        pulumi.runtime.set_all_config({})
        settings.reset_options()
    return monitor, error


@pytest.mark.parametrize("overrides, key", [
    ({"colour": "blue"}, "colour"),
    ({"target": "aks", "cacheApiReadPath": "replica-sidecar"}, "cacheApiReadPath"),
    ({"workerMinReplicas": "3", "workerMaxReplicas": "1"}, "workerMaxReplicas"),
    ({"cacheTtlSeconds": "-5"}, "cacheTtlSeconds"),
    ({"producerImage": "producer"}, "producerImage"),
    ({"queueName": ""}, "queueName"),
])
def test_main_fails_before_any_resource(overrides, key):
    monitor, error = _run_main(overrides)
    assert isinstance(error, pulumi.RunError)
    assert f"{PROJECT}:{key}" in str(error)
    assert monitor.recorded == []


@pytest.mark.parametrize("target", ["kind", "aks"])
def test_main_builds_the_stack_with_valid_config(target):
    monitor, error = _run_main({"target": target, "workerMode": "job", **RENDER_PLACEHOLDERS})
    assert error is None
    types = {r.type for r in monitor.recorded}
    assert "kubernetes:keda.sh/v1alpha1:ScaledJob" in types
    # aks defaults to Azure Managed Redis; Azure Cache for Redis only with azureRedis=classic
    assert ("azure-native:redisenterprise:RedisEnterprise" in types) == (target == "aks")
    assert ("azure-native:redisenterprise:Database" in types) == (target == "aks")
    assert "azure-native:redis:Redis" not in types
    assert ("kubernetes:apps/v1:StatefulSet" in types) == (target == "kind")


# ---- one decision point, documented keys -------------------------------------------------------
# (docs/configuration.md lists every key with its default: tests/infra/test_config_doc.py)


TARGET_LOOK = r"\.target\b|[=!]=\s*['\"](aks|kind)['\"]|['\"]aks['\"]|is_aks|is_kind"


def test_components_never_read_config_nor_branch_on_target():
    import re

    for path in sorted((ROOT / "components").glob("*.py")):
        src = path.read_text()
        assert "pulumi.Config(" not in src and "Config()" not in src, path.name
        if path.name not in ("config.py", "platform.py"):
            assert not re.search(TARGET_LOOK, src), f"{path.name} looks at the target"
    platform = (ROOT / "components" / "platform.py").read_text()
    assert "TARGETS[cfg.target]" in platform
    assert not re.search(r"(if|elif|match) .*target", platform)
    main = (ROOT / "__main__.py").read_text()
    assert not re.search(TARGET_LOOK, main)
