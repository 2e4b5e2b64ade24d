"""What an empty panel of the dashboard picture says (tools/dashboard_png.py): it names a
cluster-only source only when the panel's queries read one (it used to say "kube-state-metrics
and KEDA feed it" on the apps' own panels too)."""

from __future__ import annotations

from tools.dashboard_png import no_data_note


def test_an_app_panel_without_data_says_so_plainly():
    assert no_data_note(["sum(rate(worker_tasks_succeeded_total[1m]))"]) == "no data in this run"


def test_a_cluster_panel_names_its_source():
    assert no_data_note(["sum(kube_deployment_status_replicas{deployment='worker'})"]).endswith(
        "kube-state-metrics feeds it")
    assert no_data_note(["keda_scaler_metrics_value", "kube_hpa_status_current_replicas"]).endswith(
        "kube-state-metrics and KEDA feed it")
