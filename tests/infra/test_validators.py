"""The validators can fail: each test breaks one thing in a small, valid baseline.

The baseline below is hand-written (not rendered output): the smallest set of objects
that satisfies every check (a namespace, a Redis StatefulSet + Service, worker,
producer and cache API Deployments, the Secret, a TriggerAuthentication, a ScaledObject
and the network policies). First we prove it passes; then each case mutates one field
and asserts the expected rule fires. A check that cannot fail would show up here.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.infra.validation import keda_schema, scaler_params, security
from tests.infra.validation.k8s_schema import validate_k8s_object
from tests.infra.validation.k8s_versions import kind_version, major_minor, stack_version
from tests.infra.validation.netpol import Cluster, Endpoint
from tests.infra.validation.schemas import validate_object, validate_objects

NS = "platform"
Obj = dict[str, Any]


def _sc() -> dict:
    return {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _pod_sc(uid: int = 10001) -> dict:
    return {"runAsNonRoot": True, "runAsUser": uid, "fsGroup": uid, "seccompProfile": {"type": "RuntimeDefault"}}


RESOURCES = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
PASSWORD_ENV = {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "password"}}}
COMMON_ENV = [
    {"name": "REDIS_HOST", "value": f"redis.{NS}.svc.cluster.local"},
    {"name": "REDIS_PORT", "value": "6379"},
    PASSWORD_ENV,
    {"name": "REDIS_TLS", "value": "false"},
]
EXEC_PROBES = {
    "livenessProbe": {"exec": {"command": ["python", "-m", "apps.worker.healthcheck"]}},
    "readinessProbe": {"exec": {"command": ["python", "-m", "apps.worker.healthcheck"]}},
}


def _labels(app: str) -> dict:
    return {"app.kubernetes.io/name": app}


def _app_deployment(app: str, env: list, probes: dict, ports: list | None = None) -> Obj:
    container = {
        "name": app,
        "image": f"redis-keda-platform/{app}:0.1.0",
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "resources": RESOURCES,
        "securityContext": _sc(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        **probes,
    }
    if ports:
        container["ports"] = ports
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": _labels(app)},
            "template": {
                "metadata": {"labels": _labels(app)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": _pod_sc(),
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def _netpol(name: str, spec: dict) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": NS}, "spec": spec}


def good_objects() -> list[Obj]:
    redis = {
        "name": "redis",
        "image": "redis:7.4.2",
        "imagePullPolicy": "IfNotPresent",
        "command": ["redis-server", "--requirepass", "$(REDIS_PASSWORD)", "--dir", "/data"],
        "env": [PASSWORD_ENV],
        "ports": [{"name": "redis", "containerPort": 6379}],
        "resources": RESOURCES,
        "securityContext": _sc(),
        "livenessProbe": {"tcpSocket": {"port": 6379}},
        "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    worker_env = COMMON_ENV + [{"name": "CELERY_QUEUE", "value": "celery"}]
    api_env = COMMON_ENV + [{"name": "DATASET_DIR", "value": "/app/dataset"}]
    http_probes = {
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8000}},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8000}},
    }
    clients = [{"podSelector": {"matchLabels": _labels(a)}} for a in ("worker", "producer", "cache-api")]
    return _fresh([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "redis-auth", "namespace": NS}, "type": "Opaque", "data": {"password": "[secret]"}},
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "redis", "namespace": NS},
            "spec": {
                "serviceName": "redis",
                "selector": {"matchLabels": _labels("redis")},
                "template": {
                    "metadata": {"labels": _labels("redis")},
                    "spec": {"automountServiceAccountToken": False, "securityContext": _pod_sc(999), "containers": [redis]},
                },
                "volumeClaimTemplates": [
                    {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
                ],
            },
        },
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis", "namespace": NS}, "spec": {"selector": _labels("redis"), "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}]}},
        _app_deployment("worker", worker_env, EXEC_PROBES),
        _app_deployment("producer", worker_env, EXEC_PROBES),
        _app_deployment("cache-api", api_env, http_probes, [{"name": "http", "containerPort": 8000}]),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cache-api", "namespace": NS}, "spec": {"selector": _labels("cache-api"), "ports": [{"port": 80, "targetPort": "http"}]}},
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "TriggerAuthentication",
            "metadata": {"name": "redis-auth", "namespace": NS},
            "spec": {"secretTargetRef": [{"parameter": "password", "name": "redis-auth", "key": "password"}]},
        },
        {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": "worker", "namespace": NS},
            "spec": {
                "scaleTargetRef": {"name": "worker"},
                "minReplicaCount": 0,
                "maxReplicaCount": 10,
                "triggers": [
                    {
                        "type": "redis",
                        "metadata": {"address": f"redis.{NS}.svc.cluster.local:6379", "listName": "celery", "listLength": "5", "enableTLS": "false"},
                        "authenticationRef": {"name": "redis-auth"},
                    }
                ],
            },
        },
        _netpol("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _netpol(
            "dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        _netpol(
            "redis-ingress",
            {
                "podSelector": {"matchLabels": _labels("redis")},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": clients + [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}, "podSelector": {"matchLabels": {"app": "keda-operator"}}}],
                        "ports": [{"protocol": "TCP", "port": 6379}],
                    }
                ],
            },
        ),
        _netpol(
            "clients-egress",
            {
                "podSelector": {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["worker", "producer", "cache-api"]}]},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": _labels("redis")}}], "ports": [{"protocol": "TCP", "port": 6379}]}],
            },
        ),
        _netpol(
            "cache-api-ingress",
            {"podSelector": {"matchLabels": _labels("cache-api")}, "policyTypes": ["Ingress"], "ingress": [{"ports": [{"protocol": "TCP", "port": 8000}]}]},
        ),
    ])


def _fresh(objects: list[Obj]) -> list[Obj]:
    """A deep copy: the baseline shares dicts (env, resources) that the cases mutate."""
    return copy.deepcopy(objects)


def _get(objects: list[Obj], kind: str, name: str) -> Obj:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def _container(objects: list[Obj], name: str, kind: str = "Deployment") -> dict:
    return _get(objects, kind, name)["spec"]["template"]["spec"]["containers"][0]


def _trigger(objects: list[Obj]) -> dict:
    return _get(objects, "ScaledObject", "worker")["spec"]["triggers"][0]


def _rules(violations: list[security.Violation]) -> set[str]:
    return {v.rule for v in violations}


# --------------------------------------------------------------------------- baseline


def test_baseline_passes_every_check():
    objects = good_objects()
    assert validate_objects(objects) == []
    assert scaler_params.check_redis_triggers(objects) == []
    assert [str(v) for v in security.check_all(objects)] == []


# --------------------------------------------------------------------------- schemas


SCHEMA_BREAKS: dict[str, Callable[[list[Obj]], Obj]] = {}


def schema_break(fn: Callable[[list[Obj]], Obj]) -> Callable[[list[Obj]], Obj]:
    SCHEMA_BREAKS[fn.__name__] = fn
    return fn


@schema_break
def unknown_field_in_scaledobject_spec(objects):
    so = _get(objects, "ScaledObject", "worker")
    so["spec"]["minReplicas"] = 0  # the HPA spelling; KEDA's is minReplicaCount
    return so


@schema_break
def unknown_field_in_trigger(objects):
    _trigger(objects)["authRef"] = {"name": "redis-auth"}
    return _get(objects, "ScaledObject", "worker")


@schema_break
def misspelt_authentication_ref_field(objects):
    _trigger(objects)["authenticationRef"] = {"nme": "redis-auth"}
    return _get(objects, "ScaledObject", "worker")


@schema_break
def trigger_metadata_value_not_string(objects):
    _trigger(objects)["metadata"]["listLength"] = 5
    return _get(objects, "ScaledObject", "worker")


@schema_break
def min_replicas_above_max(objects):
    so = _get(objects, "ScaledObject", "worker")
    so["spec"]["minReplicaCount"] = 20
    return so


@schema_break
def wrong_keda_api_version(objects):
    so = _get(objects, "ScaledObject", "worker")
    so["apiVersion"] = "keda.sh/v1"
    return so


@schema_break
def unknown_field_in_keda_metadata(objects):
    so = _get(objects, "ScaledObject", "worker")
    so["metadata"]["label"] = {"a": "b"}
    return so


@schema_break
def keda_object_without_name(objects):
    ta = _get(objects, "TriggerAuthentication", "redis-auth")
    del ta["metadata"]["name"]
    return ta


@schema_break
def unknown_field_in_trigger_authentication(objects):
    ta = _get(objects, "TriggerAuthentication", "redis-auth")
    ta["spec"]["secretTargetRef"][0]["secretKey"] = "password"
    return ta


@schema_break
def unknown_field_in_container(objects):
    c = _container(objects, "worker")
    c["readonlyRootFilesystem"] = True
    return _get(objects, "Deployment", "worker")


@schema_break
def wrong_type_in_deployment(objects):
    d = _get(objects, "Deployment", "producer")
    d["spec"]["replicas"] = "one"
    return d


@schema_break
def unknown_kind(objects):
    d = _get(objects, "Deployment", "producer")
    d["kind"] = "Deploymnet"
    return d


@schema_break
def unknown_field_in_networkpolicy(objects):
    np_ = _get(objects, "NetworkPolicy", "default-deny")
    np_["spec"]["podSelectors"] = {}
    return np_


@pytest.mark.parametrize("name", sorted(SCHEMA_BREAKS))
def test_schema_validators_catch(name):
    objects = good_objects()
    broken = SCHEMA_BREAKS[name](objects)
    problems = validate_object(broken)
    assert problems, f"{name}: validator accepted {broken}"


def _scaled_job() -> Obj:
    worker = good_objects()[4]
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledJob",
        "metadata": {"name": "worker", "namespace": NS},
        "spec": {
            "jobTargetRef": {"backoffLimit": 0, "template": copy.deepcopy(worker["spec"]["template"])},
            "maxReplicaCount": 10,
            "triggers": [
                {
                    "type": "redis",
                    "metadata": {"address": f"redis.{NS}.svc.cluster.local:6379", "listName": "celery"},
                    "authenticationRef": {"name": "redis-auth"},
                }
            ],
        },
    }


def test_scaled_job_embedded_pod_is_checked_strictly():
    job = _scaled_job()
    job["spec"]["jobTargetRef"]["template"]["spec"]["restartPolicy"] = "Never"
    assert validate_object(job) == []
    job["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    assert any("securityContxt" in p for p in validate_object(job))
    job = _scaled_job()
    job["spec"]["jobTargetRef"]["template"]["metadata"]["labelz"] = {}
    assert any("labelz" in p for p in validate_object(job))


def test_each_stack_is_validated_against_the_version_it_pins():
    """The versions come from the pins (kind node image, aks kubernetesVersion), and the
    validator really uses the version asked for: pod-level ``resources`` (Kubernetes 1.32+)
    fails on 1.31 and passes on 1.36."""
    import yaml

    from components import versions
    from tests.infra.validation.paths import REPO_ROOT

    kind_doc = yaml.safe_load((REPO_ROOT / "deploy" / "kind" / "cluster.yaml").read_text())
    assert kind_version() == kind_doc["nodes"][0]["image"].split(":v", 1)[1].rsplit(".", 1)[0]
    assert stack_version("local") == kind_version()
    aks_doc = yaml.safe_load((REPO_ROOT / "stacks" / "Pulumi.aks.yaml").read_text())
    assert stack_version("aks") == major_minor(aks_doc["config"]["redis-keda-platform:kubernetesVersion"])
    assert stack_version("aks") == versions.AKS_KUBERNETES_VERSION
    assert stack_version("aks", {"kubernetesVersion": "1.34.2"}) == "1.34"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": NS},
           "spec": {"resources": {"limits": {"cpu": "1"}}, "containers": [{"name": "a", "image": "b:1"}]}}
    assert any("resources" in p for p in validate_k8s_object(pod, "1.31"))
    assert validate_k8s_object(pod, "1.36") == []
    assert validate_k8s_object(good_objects()[0]) == []


def test_tighten_leaves_maps_and_preserved_fields_open():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "object", "properties": {"b": {"type": "string"}}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "p": {"type": "object", "properties": {"x": {}}, "x-kubernetes-preserve-unknown-fields": True},
            "l": {"type": "array", "items": {"type": "object", "properties": {"y": {}}}},
        },
    }
    t = keda_schema.tighten(schema)
    assert t["additionalProperties"] is False
    assert t["properties"]["a"]["additionalProperties"] is False
    assert t["properties"]["m"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in t["properties"]["p"]
    assert t["properties"]["l"]["items"]["additionalProperties"] is False
    assert "additionalProperties" not in schema, "tighten must not modify its input"


# --------------------------------------------------------------------------- scaler params


SCALER_BREAKS = {
    "typo_listname": (lambda md: md.update(listname=md.pop("listName")), "unknown metadata key 'listname'"),
    "typo_enable_tls": (lambda md: md.update(enableTls="true"), "unknown metadata key 'enableTls'"),
    "missing_list_name": (lambda md: md.pop("listName"), "required parameter 'listName'"),
    "empty_list_name": (lambda md: md.update(listName=" "), "required parameter 'listName'"),
    "no_address_no_host": (lambda md: md.pop("address"), "needs 'address' or both 'host' and 'port'"),
    "host_without_port": (lambda md: md.update(host=md.pop("address").split(":")[0]), "needs 'address' or both"),
    "password_in_metadata": (lambda md: md.update(password="hunter2"), "'password'"),
    "password_from_env": (lambda md: md.update(passwordFromEnv="REDIS_PASSWORD"), "'passwordFromEnv'"),
    "tls_in_metadata": (lambda md: md.update(tls="enable"), "read from authParams only"),
    "ca_in_metadata": (lambda md: md.update(ca="pem"), "read from authParams only"),
    "cert_alias_in_metadata": (lambda md: md.update(Cert="pem"), "read from authParams only"),
    "bad_bool": (lambda md: md.update(enableTLS="yes"), "not a boolean"),
    "bad_int": (lambda md: md.update(listLength="five"), "not an integer"),
    "from_env_names_missing_var": (lambda md: md.update(hostFromEnv="NO_SUCH_VAR"), "NO_SUCH_VAR"),
}


@pytest.mark.parametrize("name", sorted(SCALER_BREAKS))
def test_scaler_params_catch(name):
    objects = good_objects()
    mutate, expected = SCALER_BREAKS[name]
    mutate(_trigger(objects)["metadata"])
    problems = scaler_params.check_redis_triggers(objects)
    assert any(expected in p for p in problems), problems


def test_scaler_params_accept_aliases_and_from_env():
    objects = good_objects()
    md = _trigger(objects)["metadata"]
    md.pop("address")
    md.update(hosts=f"redis.{NS}.svc.cluster.local", portFromEnv="REDIS_PORT", databaseIndex="0", activationListLength="0")
    assert scaler_params.check_redis_triggers(objects) == []


def test_scaler_params_check_trigger_authentication_parameters():
    objects = good_objects()
    _get(objects, "TriggerAuthentication", "redis-auth")["spec"]["secretTargetRef"][0]["parameter"] = "passwd"
    assert any("'passwd'" in p for p in scaler_params.check_redis_triggers(objects))
    objects = good_objects()
    _get(objects, "TriggerAuthentication", "redis-auth")["spec"]["secretTargetRef"].append({"parameter": "tls", "name": "redis-auth", "key": "tls"})
    assert any("both metadata enableTLS and auth parameter tls" in p for p in scaler_params.check_redis_triggers(objects))


def test_scaler_params_ignore_other_trigger_types():
    objects = good_objects()
    _trigger(objects)["type"] = "cpu"
    _trigger(objects)["metadata"] = {"value": "50"}
    assert scaler_params.check_redis_triggers(objects) == []


def test_scaler_params_list_matches_the_scaler():
    params = scaler_params.load_params()
    assert params.trigger_types == {"redis", "redis-cluster", "redis-sentinel"}
    keys = params.metadata_keys()
    for key in ("listName", "listLength", "activationListLength", "enableTLS", "address", "addresses", "hostFromEnv", "port"):
        assert key in keys
    for key in ("tls", "cert", "Cert", "key", "keyPassword", "ca"):
        assert key not in keys and key in params.auth_only_keys()


# --------------------------------------------------------------------------- security


def _c(name: str = "worker") -> Callable[[list[Obj]], dict]:
    return lambda objects: _container(objects, name)


def _pod(name: str = "worker") -> Callable[[list[Obj]], dict]:
    return lambda objects: _get(objects, "Deployment", name)["spec"]["template"]["spec"]


SECURITY_BREAKS: dict[str, tuple[Callable[[list[Obj]], None], str]] = {
    "no_read_only_root_fs": (lambda o: _c()(o)["securityContext"].pop("readOnlyRootFilesystem"), "pod.readOnlyRootFilesystem"),
    "read_only_root_fs_false": (lambda o: _c("cache-api")(o)["securityContext"].update(readOnlyRootFilesystem=False), "pod.readOnlyRootFilesystem"),
    "run_as_non_root_missing": (lambda o: (_c()(o)["securityContext"].pop("runAsNonRoot"), _pod()(o)["securityContext"].pop("runAsNonRoot")), "pod.runAsNonRoot"),
    "container_overrides_non_root": (lambda o: _c()(o)["securityContext"].update(runAsNonRoot=False), "pod.runAsNonRoot"),
    "run_as_root_uid": (lambda o: _pod()(o)["securityContext"].update(runAsUser=0), "pod.runAsNonRoot"),
    "capabilities_not_dropped": (lambda o: _c()(o)["securityContext"].update(capabilities={"drop": ["NET_RAW"]}), "pod.capabilities"),
    "capability_added": (lambda o: _c()(o)["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "pod.capabilities"),
    "privilege_escalation": (lambda o: _c()(o)["securityContext"].pop("allowPrivilegeEscalation"), "pod.allowPrivilegeEscalation"),
    "privileged": (lambda o: _c()(o)["securityContext"].update(privileged=True), "pod.privileged"),
    "no_seccomp": (lambda o: _pod()(o)["securityContext"].pop("seccompProfile"), "pod.seccomp"),
    "seccomp_unconfined": (lambda o: _c()(o)["securityContext"].update(seccompProfile={"type": "Unconfined"}), "pod.seccomp"),
    "token_automounted": (lambda o: _pod()(o).pop("automountServiceAccountToken"), "pod.serviceAccountToken"),
    "host_network": (lambda o: _pod()(o).update(hostNetwork=True), "pod.hostNamespaces"),
    "host_path": (lambda o: _pod()(o)["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "pod.hostPath"),
    "no_limits": (lambda o: _c()(o).update(resources={"requests": RESOURCES["requests"]}), "pod.resources"),
    "no_memory_request": (lambda o: _c()(o).update(resources={"requests": {"cpu": "1"}, "limits": RESOURCES["limits"]}), "pod.resources"),
    "no_liveness": (lambda o: _c()(o).pop("livenessProbe"), "pod.probes"),
    "no_readiness": (lambda o: _c("cache-api")(o).pop("readinessProbe"), "pod.probes"),
    "latest_tag": (lambda o: _c()(o).update(image="redis-keda-platform/worker:latest"), "pod.image"),
    "no_tag": (lambda o: _c()(o).update(image="registry:5000/redis-keda-platform/worker"), "pod.image"),
    "no_pull_policy": (lambda o: _c()(o).pop("imagePullPolicy"), "pod.imagePullPolicy"),
    "no_tmp_emptydir": (lambda o: _c()(o).pop("volumeMounts"), "pod.writableDirs"),
    "redis_data_not_mounted": (lambda o: _container(o, "redis", "StatefulSet").pop("volumeMounts"), "pod.writableDirs"),
    "password_env_literal": (lambda o: _c()(o)["env"].__setitem__(2, {"name": "REDIS_PASSWORD", "value": "hunter2"}), "secrets.envLiteral"),
    "rediscli_auth_literal": (lambda o: _container(o, "redis", "StatefulSet")["env"].append({"name": "REDISCLI_AUTH", "value": "hunter2"}), "secrets.envLiteral"),
    "password_from_configmap_key": (lambda o: _c()(o)["env"].__setitem__(2, {"name": "REDIS_PASSWORD", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "pw"}}}), "secrets.envLiteral"),
    "secret_ref_to_missing_key": (lambda o: _c()(o)["env"][2]["valueFrom"]["secretKeyRef"].update(key="pasword"), "secrets.reference"),
    "secret_in_configmap": (lambda o: o.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": NS}, "data": {"REDIS_PASSWORD": "x"}}), "secrets.configMap"),
    "redis_without_password": (lambda o: _container(o, "redis", "StatefulSet").update(command=["redis-server", "--dir", "/data"]), "secrets.redisAuth"),
    "requirepass_literal": (lambda o: _container(o, "redis", "StatefulSet").update(command=["redis-server", "--requirepass", "hunter2"]), "secrets.commandLiteral"),
    "trigger_without_auth": (lambda o: _trigger(o).pop("authenticationRef"), "secrets.triggerAuth"),
    "trigger_auth_from_env": (lambda o: _get(o, "TriggerAuthentication", "redis-auth").update(spec={"env": [{"parameter": "password", "name": "REDIS_PASSWORD"}]}), "secrets.triggerAuth"),
    "trigger_auth_missing_secret": (lambda o: _get(o, "TriggerAuthentication", "redis-auth")["spec"]["secretTargetRef"][0].update(name="nope"), "secrets.reference"),
    "default_namespace": (lambda o: _get(o, "Deployment", "producer")["metadata"].update(namespace="default"), "namespace.explicit"),
    "no_namespace": (lambda o: _get(o, "Service", "cache-api")["metadata"].pop("namespace"), "namespace.explicit"),
    "load_balancer": (lambda o: _get(o, "Service", "cache-api")["spec"].update(type="LoadBalancer"), "service.type"),
    "node_port": (lambda o: _get(o, "Service", "redis")["spec"].update(type="NodePort"), "service.type"),
    "no_default_deny": (lambda o: o.remove(_get(o, "NetworkPolicy", "default-deny")), "netpol.defaultDeny"),
    "default_deny_ingress_only": (lambda o: _get(o, "NetworkPolicy", "default-deny")["spec"].update(policyTypes=["Ingress"]), "netpol.defaultDeny"),
    "no_dns": (lambda o: o.remove(_get(o, "NetworkPolicy", "dns")), "netpol.dns"),
    "dns_udp_only": (lambda o: _get(o, "NetworkPolicy", "dns")["spec"]["egress"][0].update(ports=[{"protocol": "UDP", "port": 53}]), "netpol.dns"),
    "redis_open_to_all": (lambda o: _get(o, "NetworkPolicy", "redis-ingress")["spec"]["ingress"][0].pop("from"), "netpol.redis"),
    "redis_open_to_namespace": (lambda o: _get(o, "NetworkPolicy", "redis-ingress")["spec"]["ingress"][0]["from"].append({"podSelector": {}}), "netpol.redis"),
    "redis_all_ports": (lambda o: _get(o, "NetworkPolicy", "redis-ingress")["spec"]["ingress"][0].pop("ports"), "netpol.redis"),
    "redis_whole_keda_namespace_plus_other": (lambda o: _get(o, "NetworkPolicy", "redis-ingress")["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}}), "netpol.redis"),
    "keda_cannot_reach_redis": (lambda o: _get(o, "NetworkPolicy", "redis-ingress")["spec"]["ingress"][0]["from"].pop(), "netpol.redis"),
    "producer_cannot_reach_redis": (lambda o: _get(o, "NetworkPolicy", "redis-ingress")["spec"]["ingress"][0]["from"].pop(1), "netpol.redis"),
    "worker_egress_blocked": (lambda o: _get(o, "NetworkPolicy", "clients-egress")["spec"]["podSelector"]["matchExpressions"][0].update(values=["producer", "cache-api"]), "netpol.redis"),
    "cache_api_no_ingress": (lambda o: o.remove(_get(o, "NetworkPolicy", "cache-api-ingress")), "netpol.cacheApi"),
    "cache_api_all_ports": (lambda o: _get(o, "NetworkPolicy", "cache-api-ingress")["spec"]["ingress"][0].pop("ports"), "netpol.cacheApi"),
    "cache_api_not_found": (lambda o: [e for e in _c("cache-api")(o)["env"] if e["name"] == "DATASET_DIR"][0].update(name="DATA_DIR"), "netpol.roles"),
}


@pytest.mark.parametrize("name", sorted(SECURITY_BREAKS))
def test_security_rules_catch(name):
    objects = good_objects()
    mutate, rule = SECURITY_BREAKS[name]
    mutate(objects)
    violations = security.check_all(objects)
    assert rule in _rules(violations), [str(v) for v in violations]


def test_service_type_allowed_when_configured():
    objects = good_objects()
    _get(objects, "Service", "cache-api")["spec"]["type"] = "LoadBalancer"
    assert security.check_services(objects, ("ClusterIP", "LoadBalancer")) == []


def test_token_automount_allowed_with_reason():
    objects = good_objects()
    dep = _get(objects, "Deployment", "worker")
    dep["spec"]["template"]["spec"].pop("automountServiceAccountToken")
    assert "pod.serviceAccountToken" in _rules(security.check_pods(objects))
    dep["metadata"]["annotations"] = {security.TOKEN_REASON_ANNOTATION: "reads its own Lease"}
    assert "pod.serviceAccountToken" not in _rules(security.check_pods(objects))


def test_scaled_job_pod_is_checked():
    objects = [o for o in good_objects() if o["kind"] != "ScaledObject"]
    job = _scaled_job()
    objects.append(job)
    assert [str(v) for v in security.check_all(objects)] == []
    job["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["securityContext"].pop("readOnlyRootFilesystem")
    assert "pod.readOnlyRootFilesystem" in _rules(security.check_pods(objects))


def test_external_redis_needs_egress():
    objects = [o for o in good_objects() if o["metadata"]["name"] != "redis" or o["kind"] in ("Secret",)]
    objects = [o for o in objects if o["kind"] != "NetworkPolicy" or o["metadata"]["name"] not in ("redis-ingress",)]
    host = "platform-redis.redis.cache.windows.net"
    for name in ("worker", "producer", "cache-api"):
        env = _container(objects, name)["env"]
        env[0]["value"], env[1]["value"] = host, "6380"
    egress = _get(objects, "NetworkPolicy", "clients-egress")["spec"]["egress"][0]
    egress.update(to=[{"ipBlock": {"cidr": "10.42.16.0/24"}}], ports=[{"protocol": "TCP", "port": 6380}])
    assert [str(v) for v in security.check_network_policies(objects)] == []
    egress["ports"] = [{"protocol": "TCP", "port": 6379}]
    assert "netpol.redis" in _rules(security.check_network_policies(objects))
    # open to any address (no private endpoint): caught
    egress.update(to=[{"ipBlock": {"cidr": "0.0.0.0/0"}}], ports=[{"protocol": "TCP", "port": 6380}])
    assert any("any address" in str(v) for v in security.check_network_policies(objects))


AZURE_GOOD = [
    {"type": "azure-native:redis:Redis", "name": "redis", "properties": {"enableNonSslPort": False, "minimumTlsVersion": "1.2", "publicNetworkAccess": "Enabled"}},
    {"type": "azure-native:containerservice:ManagedCluster", "name": "aks", "properties": {"enableRBAC": True, "networkProfile": {"networkPlugin": "azure", "networkPolicy": "azure"}}},
    {"type": "azure-native:redisenterprise:RedisEnterprise", "name": "redis-cluster", "properties": {"minimumTlsVersion": "1.2", "publicNetworkAccess": "Disabled", "sku": {"name": "Balanced_B0"}}},
    {"type": "azure-native:redisenterprise:Database", "name": "redis-db", "properties": {"clientProtocol": "Encrypted", "clusteringPolicy": "NoCluster", "evictionPolicy": "NoEviction", "accessKeysAuthentication": "Enabled", "port": 10000}},
]


@pytest.mark.parametrize(
    "index,key,value,rule",
    [
        (0, "enableNonSslPort", True, "azure.redis.nonSslPort"),
        (0, "enableNonSslPort", None, "azure.redis.nonSslPort"),
        (0, "minimumTlsVersion", "1.0", "azure.redis.tls"),
        (0, "publicNetworkAccess", None, "azure.redis.publicNetworkAccess"),
        (1, "enableRBAC", False, "azure.aks.rbac"),
        (1, "networkProfile", {"networkPlugin": "kubenet"}, "azure.aks.networkPolicy"),
        (2, "minimumTlsVersion", "1.0", "azure.managedRedis.tls"),
        (2, "publicNetworkAccess", None, "azure.redis.publicNetworkAccess"),
        (3, "clientProtocol", "Plaintext", "azure.managedRedis.tls"),
        (3, "clusteringPolicy", "OSSCluster", "azure.managedRedis.clustering"),
        (3, "clusteringPolicy", None, "azure.managedRedis.clustering"),
        (3, "evictionPolicy", "VolatileLRU", "azure.managedRedis.eviction"),
        (3, "accessKeysAuthentication", "Disabled", "azure.managedRedis.accessKeys"),
    ],
)
def test_azure_rules_catch(index, key, value, rule):
    resources = copy.deepcopy(AZURE_GOOD)
    assert security.check_azure(resources) == []
    if value is None:
        resources[index]["properties"].pop(key)
    else:
        resources[index]["properties"][key] = value
    assert rule in _rules(security.check_azure(resources))


def test_admin_credentials_caught():
    resources = copy.deepcopy(AZURE_GOOD) + [{"type": "azure-native:containerservice:listManagedClusterAdminCredentials", "name": "aks", "properties": {}}]
    assert "azure.aks.adminCredentials" in _rules(security.check_azure(resources))
    assert "outputs.adminCredentials" in _rules(security.check_outputs({"adminKubeconfig": "x"}, {"adminKubeconfig"}))
    assert "outputs.secret" in _rules(security.check_outputs({"kubeconfig": "x"}, set()))
    assert security.check_outputs({"kubeconfig": "x", "redisHost": "h"}, {"kubeconfig"}) == []


def _keda_release() -> list[dict]:
    sc = {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    comps = ("operator", "metricServer", "webhooks")
    values = {"securityContext": {c: copy.deepcopy(sc) for c in comps}, "resources": {c: copy.deepcopy(RESOURCES) for c in comps}}
    return [{"type": "kubernetes:helm.sh/v3:Release", "name": "keda", "properties": {"chart": "keda", "version": "2.20.2", "values": values}}]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.update(version="2.19.0"),
        lambda p: p["values"]["securityContext"]["operator"].pop("readOnlyRootFilesystem"),
        lambda p: p["values"]["securityContext"]["webhooks"].update(capabilities={}),
        lambda p: p["values"]["resources"].pop("metricServer"),
        lambda p: p["values"]["securityContext"]["metricServer"].pop("seccompProfile"),
    ],
    ids=["version", "operator-rofs", "webhooks-caps", "metrics-resources", "metrics-seccomp"],
)
def test_keda_release_rule_catches(mutate):
    release = _keda_release()
    assert security.check_keda_release(release) == []
    mutate(release[0]["properties"])
    assert "keda.release" in _rules(security.check_keda_release(release))
    assert "keda.release" in _rules(security.check_keda_release([]))


def test_netpol_evaluator_basics():
    deny = {"metadata": {"namespace": "a"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}
    x, y = Endpoint("x", "a", {"r": "x"}), Endpoint("y", "a", {"r": "y"})
    assert Cluster([]).allowed(x, y, 80)
    assert not Cluster([deny]).allowed(x, y, 80)
    allow_in = {"metadata": {"namespace": "a"}, "spec": {"podSelector": {"matchLabels": {"r": "y"}}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"r": "x"}}}], "ports": [{"port": 80}]}]}}
    allow_out = {"metadata": {"namespace": "a"}, "spec": {"podSelector": {"matchLabels": {"r": "x"}}, "policyTypes": ["Egress"], "egress": [{"to": [{"podSelector": {"matchLabels": {"r": "y"}}}]}]}}
    cluster = Cluster([deny, allow_in, allow_out])
    assert cluster.allowed(x, y, 80)
    assert not cluster.allowed(x, y, 81)
    assert not cluster.allowed(x, y, 80, "UDP")
    assert not cluster.allowed(y, x, 80)
    z = Endpoint("z", "b", {"r": "x"})  # same labels, other namespace
    assert not cluster.ingress_allowed(z, y, 80)


def test_every_rule_id_is_documented():
    """docs/security.md lists every rule id security.py can report (and no unknown ones)."""
    from tests.infra.validation.paths import REPO_ROOT

    pattern = r"(?:pod|secrets|netpol|namespace|service|azure|outputs|keda)\.[A-Za-z.]*[A-Za-z]"
    source = (REPO_ROOT / "tests" / "infra" / "validation" / "security.py").read_text()
    in_code = set(re.findall(rf'"({pattern})"', source))
    doc = (REPO_ROOT / "docs" / "security.md").read_text()
    in_doc = set(re.findall(rf"`({pattern})`", doc))
    assert len(in_code) > 25
    assert not in_code - in_doc, f"rules not in docs/security.md: {sorted(in_code - in_doc)}"
    assert not in_doc - in_code, f"docs/security.md names unknown rules: {sorted(in_doc - in_code)}"
