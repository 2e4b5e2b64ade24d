"""The Redis password (pulumi-random on kind, list_redis_keys on aks) and the kubeconfig:
secret Outputs end to end; in Kubernetes only inside a Secret; read by pods through
secretKeyRef and by KEDA through a TriggerAuthentication; never in a ConfigMap, an env
literal, a KEDA object, a non-secret output, or a rendered file."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.infra.validation.manifests import password_secret_ref
from tools.redaction import REDACTED_B64
from tools.render import write_result
from tools.render_mocks import (
    MOCK_KUBECONFIG,
    MOCK_MANAGED_REDIS_PRIMARY_KEY,
    MOCK_PASSWORD,
    MOCK_REDIS_PRIMARY_KEY,
    MOCK_SECRET_VALUES,
)

STACK_SECRET = {"local": MOCK_PASSWORD, "aks": MOCK_MANAGED_REDIS_PRIMARY_KEY}


def _contains(value, needle: str) -> bool:
    return needle in json.dumps(value)


def _pod_spec(res):
    spec = res.inputs.get("spec") or {}
    template = spec.get("template") or (spec.get("jobTargetRef") or {}).get("template") or {}
    return template.get("spec") or {}


def _pod_containers(res):
    spec = res.inputs.get("spec") or {}
    template = spec.get("template") or (spec.get("jobTargetRef") or {}).get("template")
    if not template:
        return []
    pod = template["spec"]
    return pod.get("containers", []) + pod.get("initContainers", [])


@pytest.mark.parametrize("stack", ["local", "aks"])
@pytest.mark.parametrize("mode", ["deployment", "job"])
def test_password_only_in_secrets(rendered, stack, mode):
    r = rendered(stack, workerMode=mode)
    secret = STACK_SECRET[stack]
    holders = [x for x in r.k8s_resources if _contains(x.inputs, secret)]
    assert holders, "the password must reach Kubernetes (in a Secret)"
    assert {x.inputs["kind"] for x in holders} == {"Secret"}
    for x in holders:
        # it arrived as a secret Output, and the Secret's outputs stay secret
        assert ("stringData",) in x.secret_paths or ("stringData", "password") in x.secret_paths


@pytest.mark.parametrize("stack", ["local", "aks"])
@pytest.mark.parametrize("mode", ["deployment", "job"])
def test_no_secret_in_env_literals_configmaps_or_keda(rendered, stack, mode):
    r = rendered(stack, workerMode=mode)
    for res in r.k8s_resources:
        kind = res.inputs["kind"]
        if kind == "Secret":
            continue
        for needle in MOCK_SECRET_VALUES:
            assert not _contains(res.inputs, needle), f"{kind} {res.name} contains a secret"
        for c in _pod_containers(res):
            for e in c.get("env", []):
                if e["name"] in ("REDIS_PASSWORD", "REDISCLI_AUTH"):
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], f"{res.name}/{c['name']}"
    assert r.k8s("ConfigMap") == [] or all(not _contains(o, "password") for o in r.k8s("ConfigMap"))


@pytest.mark.parametrize("stack", ["local", "aks"])
def test_every_redis_client_reads_the_password_from_the_secret(rendered, stack):
    r = rendered(stack)
    for res in r.k8s_resources:
        for c in _pod_containers(res):
            env = {e["name"]: e for e in c.get("env", [])}
            if "REDIS_HOST" in env:
                pod = _pod_spec(res)
                if env.get("REDIS_SIGN_IN", {}).get("value") == "entra":  # keyless: no key in the pod
                    assert password_secret_ref(pod, c) is None and "redis-auth" not in str(pod), res.name
                    continue
                assert password_secret_ref(pod, c) == {"name": "redis-auth", "key": "password"}, res.name
                if "REDIS_PASSWORD_FILE" in env:  # the apps: the file of the Secret mounted read-only, no env
                    assert "REDIS_PASSWORD" not in env
                    (mount,) = [m for m in c["volumeMounts"] if env["REDIS_PASSWORD_FILE"]["value"].startswith(
                        m["mountPath"] + "/")]
                    assert mount["readOnly"] is True


@pytest.mark.parametrize("stack", ["local", "aks"])
def test_outputs_secret_marking(rendered, stack):
    r = rendered(stack)
    assert "kubeconfig" in r.secret_outputs
    for name, value in r.outputs.items():
        if name in r.secret_outputs:
            continue
        for needle in MOCK_SECRET_VALUES:
            assert not _contains(value, needle), f"output {name} leaks a secret"
    assert r.secret_outputs == {"kubeconfig", "grafanaAdminPassword"}


def test_aks_kubeconfig_is_the_user_one_and_secret(rendered):
    r = rendered("aks")
    # decoded from listManagedClusterUserCredentials, switched to non-interactive az-cli login
    kc = yaml.safe_load(r.outputs["kubeconfig"])
    assert kc["clusters"] == yaml.safe_load(MOCK_KUBECONFIG)["clusters"]
    (user,) = kc["users"]
    assert user["user"]["exec"]["command"] == "kubelogin"
    assert user["user"]["exec"]["args"] == [
        "get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
    assert user["user"]["exec"]["interactiveMode"] == "Never"
    provider = r.by_type("pulumi:providers:kubernetes")[0]
    assert provider.inputs["kubeconfig"] == r.outputs["kubeconfig"]
    assert ("kubeconfig",) in provider.secret_paths
    assert "kubeconfig" in r.secret_outputs


@pytest.mark.parametrize("azure_redis, key", [
    ("managed", MOCK_MANAGED_REDIS_PRIMARY_KEY),  # listDatabaseKeys
    ("classic", MOCK_REDIS_PRIMARY_KEY),  # listRedisKeys
])
def test_azure_key_reaches_only_the_secret_marked_secret(rendered, azure_redis, key):
    r = rendered("aks", azureRedis=azure_redis)
    (secret,) = [x for x in r.k8s_resources
                 if x.inputs["kind"] == "Secret" and x.inputs["metadata"]["name"] == "redis-auth"]
    assert secret.inputs["stringData"]["password"] == key
    assert ("stringData",) in secret.secret_paths or ("stringData", "password") in secret.secret_paths
    for a in r.azure_resources + r.other_resources:
        assert not _contains(a, key)
    holders = [x for x in r.k8s_resources if _contains(x.inputs, key)]
    assert holders == [secret]
    for name, value in r.outputs.items():
        assert name in r.secret_outputs or not _contains(value, key), name


@pytest.mark.parametrize("stack, extra", [
    ("local", {"cacheApiReadPath": "replica-sidecar"}),
    ("aks", {}),
    ("aks", {"azureRedis": "classic"}),
])
def test_rendered_files_hold_no_secret(rendered, stack, extra, tmp_path):
    r = rendered(stack, workerMode="job", **extra)
    write_result(r, tmp_path)
    blob = "\n".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    for needle in MOCK_SECRET_VALUES:
        assert needle not in blob
    secrets = [o for o in r.k8s_objects if o["kind"] == "Secret"]
    assert secrets and all(set(o["data"].values()) == {REDACTED_B64} and "stringData" not in o for o in secrets)
