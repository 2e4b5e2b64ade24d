"""The monitoring component on both stacks, under Pulumi mocks: what it renders
when on and that nothing of it exists when off; ordering; schemas; chart values; who
Prometheus selects; what each monitor scrapes; NetworkPolicies; secrets."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from components import versions
from components.monitoring import DASHBOARD_LABEL, DATASOURCE_UID, chart_values
from tests.infra.validation import manifests as m
from tests.infra.validation import monitoring as mon
from tests.infra.validation.paths import KPS_VERSION, REPO_ROOT
from tests.infra.validation.prom_schema import is_monitoring, validate_monitoring_object
from tools.render_mocks import MOCK_PASSWORD

STACKS = ("local", "aks")
RELEASE = "kubernetes:helm.sh/v3:Release"
MONITORING_TYPES = {
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
    "kubernetes:monitoring.coreos.com/v1:PodMonitor",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
}
METRICS_PORTS = {"worker": versions.WORKER_METRICS_PORT, "producer": versions.PRODUCER_METRICS_PORT,
                 "redis-exporter": versions.REDIS_EXPORTER_PORT}


def kps_release(r):
    releases = [x for x in r.by_type(RELEASE) if x.inputs["chart"] == "kube-prometheus-stack"]
    assert len(releases) <= 1
    return releases[0] if releases else None


def monitoring_objects(r):
    return [o for o in r.k8s_objects if is_monitoring(o)]


@pytest.mark.parametrize("stack", STACKS)
def test_on_by_default_renders_every_piece(rendered, stack):
    r = rendered(stack)
    assert r.config.monitoring is True
    release = kps_release(r)
    assert release is not None
    assert release.inputs["version"] == versions.KUBE_PROMETHEUS_STACK_CHART_VERSION == KPS_VERSION
    assert release.inputs["repositoryOpts"]["repo"] == "https://prometheus-community.github.io/helm-charts"
    assert release.inputs["namespace"] == "monitoring"
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in monitoring_objects(r))
    assert kinds == [("PodMonitor", "keda-operator"), ("PodMonitor", "producer"), ("PodMonitor", "redis-exporter"),
                     ("PodMonitor", "worker"), ("PrometheusRule", "redis-keda-platform"), ("ServiceMonitor", "cache-api")]
    assert m.find(r.k8s_objects, "Deployment", "platform", "redis-exporter")
    assert m.find(r.k8s_objects, "Namespace", None, "monitoring")
    assert m.find(r.k8s_objects, "Secret", "monitoring", "grafana-admin")
    assert m.find(r.k8s_objects, "ConfigMap", "monitoring", "redis-keda-platform-dashboard")
    assert {"monitoringNamespace", "grafanaAdminPassword", "prometheusService", "grafanaService"} <= set(r.outputs)
    assert r.outputs["monitoringNamespace"] == "monitoring"


@pytest.mark.parametrize("stack", STACKS)
def test_off_renders_none_of_it(rendered, stack):
    r = rendered(stack, monitoring="false")
    assert kps_release(r) is None
    assert monitoring_objects(r) == []
    names = {(o["kind"], o["metadata"]["name"]) for o in r.k8s_objects}
    assert not names & {("Deployment", "redis-exporter"), ("Namespace", "monitoring"), ("Secret", "grafana-admin"),
                        ("ConfigMap", "redis-keda-platform-dashboard")}
    assert not [o for o in r.k8s("NetworkPolicy") if o["metadata"]["name"].endswith("-metrics-ingress")]
    assert not [x for x in r.resources if x.type == "random:index/randomPassword:RandomPassword" and "grafana" in x.name]
    assert "grafanaAdminPassword" not in r.outputs and r.outputs["monitoringNamespace"] == ""
    # the rest of the platform is all there
    assert {o["metadata"]["name"] for o in r.k8s("Deployment")} >= {"cache-api", "producer", "worker"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_monitoring_object_depends_on_the_release(rendered, stack):
    r = rendered(stack)
    release = kps_release(r)
    crs = [x for x in r.resources if x.type in MONITORING_TYPES]
    assert {x.type for x in crs} == MONITORING_TYPES and len(crs) == 6
    dashboard = [x for x in r.resources if x.type == "kubernetes:core/v1:ConfigMap" and "dashboard" in x.name]
    for res in crs + dashboard:
        assert release.urn in res.explicit_depends_on, res.name
    secret = [x for x in r.resources if x.type == "kubernetes:core/v1:Secret" and x.inputs["metadata"]["name"] == "grafana-admin"][0]
    assert secret.urn in release.explicit_depends_on  # Grafana's admin Secret exists before Grafana
    ns = [x for x in r.resources if x.type == "kubernetes:core/v1:Namespace" and x.inputs["metadata"]["name"] == "monitoring"][0]
    assert ns.urn in release.depends_on
    keda = [x for x in r.by_type(RELEASE) if x.inputs["chart"] == "keda"][0]
    assert not set(keda.depends_on) & {x.urn for x in crs + [release]}, "KEDA must not wait for monitoring"


@pytest.mark.parametrize("stack", STACKS)
def test_monitoring_objects_validate_against_the_tightened_crds(rendered, stack):
    objs = monitoring_objects(rendered(stack))
    problems = [p for o in objs for p in validate_monitoring_object(o)]
    assert objs and not problems, "\n".join(problems)


def test_tightened_crds_reject_a_typo_and_an_unknown_kind(rendered):
    pm = next(o for o in monitoring_objects(rendered("local")) if o["kind"] == "PodMonitor")
    bad = copy.deepcopy(pm)
    bad["spec"]["podMetricsEndpoints"][0]["intervall"] = "5s"
    assert any("intervall" in p for p in validate_monitoring_object(bad))
    bad = copy.deepcopy(pm)
    bad["kind"] = "PodMonitors"
    assert validate_monitoring_object(bad)
    bad = copy.deepcopy(pm)
    del bad["metadata"]["name"]
    assert validate_monitoring_object(bad)


@pytest.mark.parametrize("stack", STACKS)
def test_every_value_we_set_is_a_chart_value(rendered, stack):
    values = chart_values_for(rendered(stack))
    assert values["prometheus"]["prometheusSpec"]["retention"] == "2d"
    assert mon.values_key_problems(values) == []


def test_every_keda_value_we_set_is_a_chart_value(rendered):
    import yaml

    from components.keda import KedaArgs, keda_values
    from tests.infra.validation.paths import chart_dir

    keda_defaults = yaml.safe_load((chart_dir("keda") / "values.yaml").read_text())
    keda = [x for x in rendered("local").by_type(RELEASE) if x.inputs["chart"] == "keda"][0]
    assert mon.values_key_problems(keda.inputs["values"], keda_defaults, "keda") == []
    typo = keda_values(KedaArgs())
    typo["prometheus"]["operater"] = {"enabled": True}
    assert mon.values_key_problems(typo, keda_defaults, "keda") == ["prometheus.operater: not a value of keda (typo?)"]


def chart_values_for(r):
    return kps_release(r).inputs["values"]


def test_the_values_check_catches_a_typo():
    values = copy.deepcopy(chart_values(_args()))
    values["prometheus"]["prometheusSpec"]["retension"] = "1d"
    values["grafana"]["sidecar"]["dashboard"] = {"enabled": True}
    problems = mon.values_key_problems(values)
    assert any("retension" in p for p in problems) and any("sidecar.dashboard:" in p for p in problems), problems


def _args():
    from components.monitoring import MonitoringArgs

    return MonitoringArgs(app_namespace="platform", app_namespace_name="platform")


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_selects_our_monitors_and_rules(rendered, stack):
    r = rendered(stack)
    objs = monitoring_objects(r)
    assert mon.selection_problems(chart_values_for(r), objs) == []
    # and the check itself: with the chart's defaults, our unlabelled objects would be ignored
    assert mon.selection_problems({}, objs)


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_password_is_random_secret_and_reaches_grafana_by_secret(rendered, stack):
    r = rendered(stack)
    assert "grafanaAdminPassword" in r.secret_outputs and r.outputs["grafanaAdminPassword"] == MOCK_PASSWORD
    secret = m.find(r.k8s_objects, "Secret", "monitoring", "grafana-admin")
    assert set(secret["data"]) == {"admin-user", "admin-password"}
    grafana = chart_values_for(r)["grafana"]
    assert grafana["admin"] == {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}
    assert MOCK_PASSWORD not in json.dumps(chart_values_for(r))


@pytest.mark.parametrize("stack", STACKS)
def test_dashboard_reaches_grafanas_sidecar_and_its_datasource(rendered, stack):
    r = rendered(stack)
    merged = mon.merged_values(chart_values_for(r))
    sidecar = mon.get(merged, "grafana.sidecar.dashboards")
    cm = m.find(r.k8s_objects, "ConfigMap", "monitoring", "redis-keda-platform-dashboard")
    # Its own namespace only (the chart's default is ALL), ConfigMaps only, through our Role.
    assert sidecar["enabled"] is True and sidecar["searchNamespace"] == cm["metadata"]["namespace"]
    assert sidecar["resource"] == "configmap" == mon.get(merged, "grafana.sidecar.datasources.resource")
    assert cm["metadata"]["labels"][sidecar["label"]] == sidecar["labelValue"] == DASHBOARD_LABEL[1]
    assert mon.get(merged, "grafana.sidecar.datasources.uid") == DATASOURCE_UID
    (body,) = cm["data"].values()
    dashboard = json.loads(body)
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]} | {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {DATASOURCE_UID}
    defaults = {v["name"]: v["current"]["value"] for v in dashboard["templating"]["list"]}
    assert defaults == {"namespace": "platform", "queue": "celery", "dead_letter": "celery.dead_letter"}


def _pod_templates(objects, namespace):
    return [pt for pt in m.pod_templates(objects) if pt.namespace == namespace]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("mode", ["deployment", "job"])
def test_each_monitor_scrapes_a_named_port_of_real_pods(rendered, stack, mode):
    r = rendered(stack, workerMode=mode)
    objs = r.k8s_objects
    for mon_obj in monitoring_objects(r):
        spec, ns = mon_obj["spec"], mon_obj["metadata"]["namespace"]
        if mon_obj["kind"] == "PodMonitor":
            target_ns = (spec.get("namespaceSelector") or {}).get("matchNames", [ns])
            (port,) = [e["port"] for e in spec["podMetricsEndpoints"]]
            if target_ns == ["keda"]:  # the KEDA chart's pod: tests/infra/test_chart_gates.py (the real render)
                continue
            pods = [pt for n in target_ns for pt in _pod_templates(objs, n) if mon.selector_matches(spec["selector"], pt.labels)]
            assert pods, f"{m.ref(mon_obj)} selects no pod"
            for pt in pods:
                ports = {p["name"] for _, c in pt.containers() for p in c.get("ports") or []}
                assert port in ports, f"{m.ref(mon_obj)}: {pt.where} has no port {port!r}"
                assert pt.labels.get(spec["jobLabel"]), "jobLabel must name a pod label (it becomes `job`)"
        elif mon_obj["kind"] == "ServiceMonitor":
            svcs = [s for s in m.by_kind(objs, "Service") if m.namespace(s) == ns
                    and mon.selector_matches(spec["selector"], s["metadata"].get("labels") or {})]
            assert len(svcs) == 1, f"{m.ref(mon_obj)} selects {len(svcs)} Services"
            assert {e["port"] for e in spec["endpoints"]} <= {p["name"] for p in svcs[0]["spec"]["ports"]}


@pytest.mark.parametrize("stack", STACKS)
def test_redis_exporter_points_at_the_one_endpoint_without_config(rendered, stack):
    r = rendered(stack)
    dep = m.find(r.k8s_objects, "Deployment", "platform", "redis-exporter")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = m.container_env(c)
    scheme = "rediss" if stack == "aks" else "redis"
    port = 10000 if stack == "aks" else 6379  # aks: Azure Managed Redis (the default)
    assert env["REDIS_ADDR"]["value"] == f"{scheme}://{r.outputs['redisHost']}:{port}" and r.outputs["redisPort"] == port
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "redis-auth", "key": "password"}
    assert env["REDIS_EXPORTER_CONFIG_COMMAND"]["value"] == "-"
    assert env["REDIS_EXPORTER_CHECK_SINGLE_KEYS"]["value"] == "db0=celery,db0=celery.inflight,db0=celery.dead_letter,db0=unacked"
    assert c["image"] == versions.REDIS_EXPORTER_IMAGE


def test_keda_serves_operator_metrics(rendered):
    keda = [x for x in rendered("local").by_type(RELEASE) if x.inputs["chart"] == "keda"][0]
    assert keda.inputs["values"]["prometheus"]["operator"] == {"enabled": True, "port": versions.KEDA_OPERATOR_METRICS_PORT}


@pytest.mark.parametrize("stack", STACKS)
def test_metrics_ports_open_to_the_monitoring_namespace_only(rendered, stack):
    objs = rendered(stack).k8s_objects
    assert mon.metrics_ingress_problems(objs, "monitoring", METRICS_PORTS) == []
    # without the metrics policies the default deny keeps Prometheus out
    no_metrics = [o for o in objs if not (o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-metrics-ingress"))]
    assert len(mon.metrics_ingress_problems(no_metrics, "monitoring", METRICS_PORTS)) == 3


@pytest.mark.parametrize("stack", STACKS)
def test_redis_exporter_may_reach_redis(rendered, stack):
    from tests.infra.validation.netpol import Cluster, Endpoint

    r = rendered(stack)
    objs = r.k8s_objects
    cluster = Cluster(m.by_kind(objs, "NetworkPolicy"))
    exporter = Endpoint("redis-exporter", "platform", {"app.kubernetes.io/name": "redis-exporter"})
    if stack == "local":
        redis = Endpoint("redis", "platform", {"app.kubernetes.io/name": "redis", "app.kubernetes.io/component": "primary",
                                               "app.kubernetes.io/part-of": "redis-keda-platform"})
        assert cluster.allowed(exporter, redis, 6379)
    else:
        # Azure Redis behind its private endpoint: an address in the endpoint subnet
        import ipaddress

        ip = str(next(ipaddress.ip_network(r.config.endpoint_subnet_cidr).hosts()) + 3)
        assert cluster.egress_allowed(exporter, Endpoint("azure redis", external=True, ip=ip), r.outputs["redisPort"])


def test_rules_and_dashboard_follow_the_stack_config(rendered):
    r = rendered("local", queueName="jobs", workerMaxReplicas="7", namespace="apps")
    rule = next(o for o in monitoring_objects(r) if o["kind"] == "PrometheusRule")
    text = json.dumps(rule["spec"])
    assert 'key=\\"jobs\\"' in text and 'key=\\"jobs.dead_letter\\"' in text and ">= 7" in text
    assert 'namespace=\\"apps\\"' in text and 'namespace=\\"platform' not in text
    dep = m.find(r.k8s_objects, "Deployment", "apps", "redis-exporter")
    env = m.container_env(dep["spec"]["template"]["spec"]["containers"][0])
    assert env["REDIS_EXPORTER_CHECK_SINGLE_KEYS"]["value"].startswith("db0=jobs,db0=jobs.inflight,")


def test_monitoring_namespace_must_differ_from_the_app_and_keda_namespaces():
    from components.config import ConfigError, load_config

    for clash in ("platform", "keda"):
        with pytest.raises(ConfigError, match="monitoringNamespace"):
            load_config({"monitoringNamespace": clash})
    assert load_config({"monitoringNamespace": "platform", "monitoring": "false"}).monitoring is False


def test_assets_have_no_unfilled_placeholders():
    for path in (REPO_ROOT / "monitoring").iterdir():
        if path.suffix in (".yaml", ".json"):
            assert "<<" in path.read_text(), f"{path.name}: nothing to fill?"
    from components.monitoring import alert_rules, dashboard_json

    assert "<<" not in json.dumps(alert_rules("ns", "q", "q.dead_letter", 3, 1000, 1 << 28))
    assert "<<" not in dashboard_json("ns", "q", "q.dead_letter")
    with pytest.raises(ValueError, match="placeholder"):
        from components import monitoring as comp

        comp._fill("a <<nope>>", {}, Path("x.yaml"))
