"""Monitoring: kube-prometheus-stack, and what it needs to see the platform scale.

- its own namespace (Pod Security ``restricted``) and the ``kube-prometheus-stack`` Helm
  release, pinned (components/versions.py), sized for a laptop on kind;
- NetworkPolicies of ours in that namespace (components/network.py
  ``monitoring_policy_specs``): default deny, then DNS, the API server, what Prometheus
  scrapes, its pods to one another and the API server to the operator's webhook; the
  chart's own (off by default) are partial and left off (docs/network.md);
- Grafana's admin password from ``pulumi-random``, in a Secret the chart reads
  (``grafana.admin.existingSecret``), exported as a secret output;
- scrape objects: a ServiceMonitor for the cache API, PodMonitors for the worker, the
  producer, redis_exporter and KEDA's operator; a PrometheusRule (monitoring/alerts.yaml)
  and the dashboard (monitoring/dashboard.json) in a ConfigMap for Grafana's sidecar.

Every custom resource ``depends_on`` the release (its CRDs exist first on up; on destroy
the objects go while the operator still runs), like the KEDA objects do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml
from pulumi import Output, ResourceOptions

from components import k8s as kx
from components import versions
from components.network import create_policies, monitoring_policy_specs
from components.redis_exporter import RedisExporter

#: Every port Prometheus scrapes in the app namespace: the cache API (its /metrics is on the
#: API port), the worker, the producer and redis_exporter.
APP_METRICS_PORTS = (versions.CACHE_API_PORT, versions.WORKER_METRICS_PORT, versions.PRODUCER_METRICS_PORT,
                     versions.REDIS_EXPORTER_PORT)

ASSETS = Path(__file__).resolve().parents[1] / "monitoring"
RULES_FILE = ASSETS / "alerts.yaml"
DASHBOARD_FILE = ASSETS / "dashboard.json"
MONITORING_API = "monitoring.coreos.com/v1"
RELEASE_NAME = "monitoring"
#: kube-prometheus-stack names its objects after this (chart value fullnameOverride).
FULLNAME = "monitoring"
PROMETHEUS_SERVICE = f"{FULLNAME}-prometheus"
PROMETHEUS_PORT = 9090
#: The grafana sub-chart names its Service after the release.
GRAFANA_SERVICE = f"{RELEASE_NAME}-grafana"
GRAFANA_PORT = 80
GRAFANA_ADMIN_SECRET = "grafana-admin"
#: Grafana's sidecars read ConfigMaps in the monitoring namespace only, through this Role
#: (the chart's own Role or ClusterRole adds Secrets, which the sidecars do not need).
GRAFANA_SIDECAR_ROLE = "grafana-sidecar-configmaps"
GRAFANA_ADMIN_USER = "admin"
#: Grafana's dashboard sidecar loads ConfigMaps with this label (chart values
#: grafana.sidecar.dashboards.label / labelValue) from its own namespace, where the dashboard ConfigMap is.
DASHBOARD_LABEL = ("grafana_dashboard", "1")
#: The datasource uid the chart provisions (grafana.sidecar.datasources.uid); the dashboard uses it.
DATASOURCE_UID = "prometheus"
#: How often Prometheus scrapes the platform's own targets (the queue moves in seconds).
SCRAPE_INTERVAL = "5s"
JOB_LABEL = "app.kubernetes.io/name"
#: The KEDA 2.20.2 chart names its operator's metrics container port ``metrics`` (8080);
#: tests/infra/test_chart_gates.py checks it against the chart's render.
KEDA_METRICS_PORT_NAME = "metrics"


def _fill(text: str, values: Mapping[str, Any], source: Path) -> str:
    """Replace ``<<name>>`` placeholders; every one must be known and used."""
    for name, value in values.items():
        marker = f"<<{name}>>"
        if marker not in text:
            raise ValueError(f"{source.name}: placeholder {marker} is never used")
        text = text.replace(marker, str(value))
    if "<<" in text:
        start = text.index("<<")
        raise ValueError(f"{source.name}: unknown placeholder near {text[start:start + 30]!r}")
    return text


def alert_rules(namespace: str, queue: str, dead_letter: str, max_replicas: int,
                redis_client_limit: int, redis_memory_limit_bytes: int) -> dict[str, Any]:
    """``spec`` of the PrometheusRule: monitoring/alerts.yaml with the stack's values filled in."""
    values = {"namespace": namespace, "queue": queue, "dead_letter": dead_letter, "max_replicas": max_replicas,
              "redis_client_limit": redis_client_limit, "redis_memory_limit_bytes": redis_memory_limit_bytes}
    return yaml.safe_load(_fill(RULES_FILE.read_text(), values, RULES_FILE))


def dashboard_json(namespace: str, queue: str, dead_letter: str) -> str:
    """monitoring/dashboard.json with the template variables' defaults set to the stack's."""
    values = {"namespace": namespace, "queue": queue, "dead_letter": dead_letter}
    text = _fill(DASHBOARD_FILE.read_text(), values, DASHBOARD_FILE)
    return json.dumps(json.loads(text), separators=(",", ":"))  # valid JSON, compact in the ConfigMap


def _res(cpu_req: str, mem_req: str, cpu_lim: str, mem_lim: str) -> dict[str, Any]:
    return kx.resources(cpu_req, mem_req, cpu_lim, mem_lim)


def _restricted_container() -> dict[str, Any]:
    """What Pod Security ``restricted`` asks of a container. The root filesystem is left as the
    grafana chart sets it (writable): restricted does not require read-only, and we have not
    run Grafana read-only on a cluster here."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    namespace: str = "monitoring"
    """Namespace of the release (created here, Pod Security ``restricted``)."""
    app_namespace: pulumi.Input[str]
    """App namespace: the workloads to scrape (redis_exporter included), the alerts' scope."""
    app_namespace_name: str
    """The same, as a plain string (rules and dashboard defaults are rendered from it)."""
    keda_namespace: str = "keda"
    """Namespace of KEDA's operator (scraped by a PodMonitor)."""
    queue_name: str = "celery"
    """Celery queue = Redis list KEDA measures."""
    worker_max_replicas: int = 10
    """The worker's maximum (the backlog alert fires when it is reached)."""
    redis_client_limit: int = 1000
    """The Redis's client limit (components/connections.py): the clients alert's threshold."""
    redis_memory_limit_bytes: int = 0
    """The Redis's memory limit where INFO reports no maxmemory (Azure Managed Redis)."""
    worker_app: str = "worker"
    """``app.kubernetes.io/name`` of the worker pods (Deployment or ScaledJob)."""
    producer_app: str = "producer"
    """``app.kubernetes.io/name`` of the producer pods."""
    cache_api_app: str = "cache-api"
    """``app.kubernetes.io/name`` of the cache API pods and Service."""
    chart_version: str = versions.KUBE_PROMETHEUS_STACK_CHART_VERSION
    """Pinned chart version."""
    prometheus_retention: str = "2d"
    """How long Prometheus keeps samples (emptyDir storage: also bounded by retentionSize)."""

    def __post_init__(self) -> None:
        if not self.namespace or not self.app_namespace_name:
            raise ValueError("MonitoringArgs.namespace and app_namespace_name must not be empty")
        if self.namespace in (self.app_namespace_name, self.keda_namespace):
            raise ValueError("MonitoringArgs.namespace must differ from the app and KEDA namespaces")
        if not self.chart_version:
            raise ValueError("MonitoringArgs.chart_version must be pinned")
        if self.worker_max_replicas < 1:
            raise ValueError("MonitoringArgs.worker_max_replicas must be >= 1")
        if self.redis_client_limit < 1 or self.redis_memory_limit_bytes < 0:
            raise ValueError("MonitoringArgs.redis_client_limit must be >= 1, redis_memory_limit_bytes >= 0")

    @property
    def dead_letter_queue(self) -> str:
        """The worker's dead-letter list (CELERY_DEAD_LETTER_QUEUE default)."""
        return f"{self.queue_name}.dead_letter"


def chart_values(args: MonitoringArgs) -> dict[str, Any]:
    """kube-prometheus-stack values (camelCase, as the chart reads them). Every key path is
    a key of the pinned chart's values.yaml, or of a sub-chart's (tests/infra/test_monitoring.py)."""
    prometheus_spec = {
        # Select every ServiceMonitor/PodMonitor/PrometheusRule (ours carry no release label).
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "serviceMonitorSelector": {},
        "serviceMonitorNamespaceSelector": {},
        "podMonitorSelector": {},
        "podMonitorNamespaceSelector": {},
        "ruleSelector": {},
        "ruleNamespaceSelector": {},
        "scrapeInterval": "15s",
        "evaluationInterval": "15s",
        # emptyDir storage: a laptop demo, bounded by time and size.
        "retention": args.prometheus_retention,
        "retentionSize": "1GB",
        "resources": _res("100m", "256Mi", "1", "1Gi"),
    }
    return {
        "fullnameOverride": FULLNAME,
        "crds": {"enabled": True},
        # The chart's ~150 default rules and 30 dashboards are about the cluster's own parts
        # (etcd, scheduler, node-exporter...) that kind and AKS's managed control plane do not
        # expose: they would fire TargetDown noise. The platform ships its own.
        "defaultRules": {"create": False},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        # node-exporter needs hostNetwork, hostPID and hostPath mounts (not allowed under
        # Pod Security "restricted"); on kind it would only see the Docker host anyway.
        "nodeExporter": {"enabled": False},
        "alertmanager": {"alertmanagerSpec": {"retention": "24h", "resources": _res("10m", "32Mi", "100m", "128Mi")}},
        "prometheusOperator": {
            "resources": _res("50m", "64Mi", "200m", "256Mi"),
            # the admission webhook's certificate Jobs (Helm hooks): the chart gives them none
            "admissionWebhooks": {"patch": {"resources": _res("10m", "16Mi", "100m", "64Mi")}},
        },
        "prometheus": {"prometheusSpec": prometheus_spec},
        "grafana": {
            "defaultDashboardsEnabled": False,
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
            # Grafana reads ConfigMaps in its own namespace only (the dashboard ConfigMap lives
            # there): a Role of ours, no ClusterRole, no Secret (docs/security.md).
            "rbac": {"namespaced": True, "useExistingRole": GRAFANA_SIDECAR_ROLE},
            "sidecar": {
                # kube-prometheus-stack's default searches ALL namespaces: its own one only.
                "dashboards": {"enabled": True, "label": DASHBOARD_LABEL[0], "labelValue": DASHBOARD_LABEL[1],
                               "resource": "configmap", "searchNamespace": args.namespace},
                "datasources": {"uid": DATASOURCE_UID, "resource": "configmap"},
                # grafana sub-chart values (the dashboard and datasource sidecar containers)
                "resources": _res("10m", "64Mi", "100m", "128Mi"),
                "securityContext": _restricted_container(),
            },
            # grafana sub-chart values: restricted pods, no helm-test pod
            "securityContext": {"runAsNonRoot": True, "runAsUser": 472, "runAsGroup": 472, "fsGroup": 472,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containerSecurityContext": _restricted_container(),
            "resources": _res("50m", "128Mi", "500m", "512Mi"),
            "testFramework": {"enabled": False},
        },
        # kube-state-metrics sub-chart values (its pod defaults are already restricted): no
        # Secret collector, so no cluster-wide right to list Secrets (nothing here reads
        # kube_secret_* metrics).
        "kube-state-metrics": {"resources": _res("10m", "64Mi", "200m", "256Mi"), "collectorsExclude": ["secrets"]},
    }


class Monitoring(pulumi.ComponentResource):
    """Namespace, Grafana admin Secret, ``helm.v3.Release`` of kube-prometheus-stack and the
    monitoring custom resources (each ``depends_on`` the release). redis_exporter is its own
    component (components/redis_exporter.py); this one scrapes it."""

    release: k8s.helm.v3.Release
    namespace: Output[str]
    network_policies: list[k8s.networking.v1.NetworkPolicy]
    grafana_admin_password: Output[str]
    dead_letter_queue: str
    """The dead-letter list the alerts and the dashboard watch."""

    def __init__(self, name: str, args: MonitoringArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:Monitoring", name, None, opts)
        self._name = name
        self.dead_letter_queue = args.dead_letter_queue
        ns = kx.restricted_namespace(f"{name}-ns", args.namespace, self)
        self.namespace = ns.metadata.name
        admin = self._create_grafana_admin(name)
        # Before the release: its pods (and its admission Jobs) start fenced, their flows allowed.
        self.network_policies = create_policies(name, self.namespace, monitoring_policy_specs(
            app_namespace=args.app_namespace, app_metrics_ports=APP_METRICS_PORTS,
            keda_namespace=args.keda_namespace, keda_metrics_port=versions.KEDA_OPERATOR_METRICS_PORT), self)
        sidecar_role = k8s.rbac.v1.Role(
            f"{name}-grafana-sidecar-role",
            metadata={"name": GRAFANA_SIDECAR_ROLE, "namespace": self.namespace, "labels": kx.labels("grafana")},
            rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch", "list"]}],
            opts=ResourceOptions(parent=self),
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE_NAME,
            chart=versions.KUBE_PROMETHEUS_STACK_CHART,
            version=args.chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=versions.KUBE_PROMETHEUS_STACK_CHART_REPO),
            namespace=self.namespace,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
            values=chart_values(args),
            opts=ResourceOptions(parent=self, depends_on=[admin, sidecar_role, *self.network_policies]),
        )
        self._create_monitors(args)
        self._create_rules_and_dashboard(name, args)
        self.register_outputs({"namespace": self.namespace, "grafanaAdminPassword": self.grafana_admin_password})

    # -- Grafana's admin ------------------------------------------------------------------
    def _create_grafana_admin(self, name: str) -> k8s.core.v1.Secret:
        password = random.RandomPassword(
            f"{name}-grafana-password",
            length=24,
            special=False,
            opts=ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )
        self.grafana_admin_password = Output.secret(password.result)
        return k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": GRAFANA_ADMIN_SECRET, "namespace": self.namespace, "labels": kx.labels("grafana-admin")},
            type="Opaque",
            string_data={"admin-user": GRAFANA_ADMIN_USER, "admin-password": self.grafana_admin_password},
            opts=ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
        )

    # -- monitoring custom resources ----------------------------------------------------
    def _cr(self, suffix: str, kind: str, namespace: pulumi.Input[str], obj_name: str, spec: dict[str, Any],
            labels: Mapping[str, str] | None = None) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            f"{self._name}-{suffix}",
            api_version=MONITORING_API,
            kind=kind,
            metadata={"name": obj_name, "namespace": namespace,
                      "labels": dict(labels or kx.labels(obj_name, "monitoring"))},
            spec=spec,
            opts=ResourceOptions(parent=self, depends_on=[self.release]),
        )

    @staticmethod
    def _endpoint(port: str) -> dict[str, Any]:
        return {"port": port, "path": "/metrics", "interval": SCRAPE_INTERVAL}

    def _pod_monitor(self, suffix: str, namespace: pulumi.Input[str], app: str, port: str,
                     pod_namespace: Sequence[pulumi.Input[str]] | None = None, honor_labels: bool = False) -> None:
        spec: dict[str, Any] = {
            "jobLabel": JOB_LABEL,
            "selector": {"matchLabels": {JOB_LABEL: app}},
            "podMetricsEndpoints": [{**self._endpoint(port), **({"honorLabels": True} if honor_labels else {})}],
        }
        if pod_namespace is not None:
            spec["namespaceSelector"] = {"matchNames": list(pod_namespace)}
        self._cr(f"podmonitor-{suffix}", "PodMonitor", namespace, app, spec)

    def _create_monitors(self, args: MonitoringArgs) -> None:
        ns = args.app_namespace
        self._cr("servicemonitor-cache-api", "ServiceMonitor", ns, args.cache_api_app, {
            "jobLabel": JOB_LABEL,
            "selector": {"matchLabels": {JOB_LABEL: args.cache_api_app}},
            "endpoints": [self._endpoint("http")],
        })
        for app in (args.worker_app, args.producer_app, RedisExporter.APP):
            self._pod_monitor(app, ns, app, "metrics")
        # KEDA's metrics carry the ScaledObject's own `namespace` label: keep it (honorLabels),
        # so scaler errors are counted against the app namespace. The object lives here, not in
        # KEDA's release, so KEDA never depends on the monitoring CRDs.
        self._pod_monitor("keda-operator", self.namespace, "keda-operator", KEDA_METRICS_PORT_NAME,
                          pod_namespace=[args.keda_namespace], honor_labels=True)

    def _create_rules_and_dashboard(self, name: str, args: MonitoringArgs) -> None:
        rules = alert_rules(args.app_namespace_name, args.queue_name, args.dead_letter_queue, args.worker_max_replicas,
                            args.redis_client_limit, args.redis_memory_limit_bytes)
        self._cr("alerts", "PrometheusRule", self.namespace, "redis-keda-platform", rules)
        k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            metadata={
                "name": "redis-keda-platform-dashboard",
                "namespace": self.namespace,
                "labels": {**kx.labels("grafana-dashboard", "monitoring"), DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1]},
            },
            data={"redis-keda-platform.json": dashboard_json(args.app_namespace_name, args.queue_name, args.dead_letter_queue)},
            opts=ResourceOptions(parent=self, depends_on=[self.release]),
        )
