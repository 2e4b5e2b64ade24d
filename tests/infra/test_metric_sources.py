"""Every metric the dashboard and the alerts use comes from a target that exists:
tests/infra/validation/metric_sources.py over the whole rendered cluster (ours, both charts',
the pods the Prometheus Operator creates, stand-ins for what the cluster itself runs)."""

from __future__ import annotations

import copy

import pytest

from tests.infra.test_chart_gates import cluster_objects
from tests.infra.validation import manifests as m
from tests.infra.validation.metric_sources import queries, scrape_targets, source_problems
from tests.infra.validation.render import VARIANT_IDS, rendered
from tools import report

DASHBOARD = report.dashboard_queries("platform", "celery", "celery.dead_letter", "5m")


@pytest.mark.parametrize("variant_id", VARIANT_IDS)
def test_every_dashboard_and_alert_metric_has_a_target(variant_id):
    objects = cluster_objects(rendered(variant_id))
    assert len(queries(objects, DASHBOARD)) >= len(DASHBOARD) + 8  # the 8 alert rules
    assert source_problems(objects, DASHBOARD) == []


def test_the_exporters_are_found_by_their_images():
    jobs = {t.job: t for t in scrape_targets(cluster_objects(rendered("local-deployment")))}
    assert {"worker", "cache-api", "producer", "redis-exporter", "kube-state-metrics", "keda-operator"} <= set(jobs)
    assert "registry.k8s.io/kube-state-metrics/kube-state-metrics" in jobs["kube-state-metrics"].images
    assert "ghcr.io/kedacore/keda" in jobs["keda-operator"].images


def _broken(ref: str, change) -> list[str]:
    objects = copy.deepcopy(cluster_objects(rendered("local-deployment")))
    target = next(o for o in objects if m.ref(o) == ref)
    if change is None:
        objects.remove(target)
    else:
        change(target)
    return source_problems(objects, DASHBOARD)


@pytest.mark.parametrize("ref, change, expected", [
    ("ServiceMonitor monitoring/monitoring-kube-state-metrics", None,
     "kube_deployment_status_replicas comes from registry.k8s.io/kube-state-metrics/kube-state-metrics, which no monitor scrapes"),
    ("PodMonitor platform/worker", lambda o: o["spec"].update(jobLabel="app.kubernetes.io/component"),
     "celery_tasks_succeeded_total asks for job='worker', which no monitor's target has"),
    ("PrometheusRule monitoring/redis-keda-platform", lambda o: [g.update(rules=[r for r in g["rules"] if r.get("record") !=
                                                                            "platform:redis_client_limit"])
                                                            for g in o["spec"]["groups"]],
     "platform:redis_client_limit names no job and no known exporter"),
    ("PodMonitor monitoring/keda-operator", lambda o: o["spec"]["podMetricsEndpoints"][0].update(honorLabels=False),
     "keda_scaler_metrics_value filters on the object's namespace, but PodMonitor monitoring/keda-operator does not keep"),
])
def test_the_source_check_names_the_metric_without_a_target(ref, change, expected):
    problems = _broken(ref, change)
    assert any(expected in p for p in problems), problems
