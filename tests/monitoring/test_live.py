"""The monitoring for real: redis-server, redis_exporter, the cache API, two
Celery workers and the producer, scraped every second by a real Prometheus whose targets
carry the labels the rendered ServiceMonitor/PodMonitors give them in the cluster
(tests/monitoring/scrape_config.py), with the rendered alert rules loaded.

A burst of tasks (and one bad one) and a few hundred reads later, every dashboard query
(template variables filled in) goes to Prometheus' query API: none fails to parse, every
query fed by these processes returns numbers, the key values are right, and the panels fed
by kube-state-metrics or KEDA use only metric names those exporters publish at the pinned
versions (listed below). Then ``make report``'s code draws the run.

The producer's steady stream goes to a queue no worker reads, so the workers' counters
add up to exactly the burst while the producer's own panel still has data.
"""

from __future__ import annotations

import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import httpx
import pytest
import yaml

from tests.apps.cache_api.conftest import sample_dataset, uvicorn_factory  # noqa: F401 (fixtures)
from tests.apps.redis_server import free_port
from tests.apps.worker.helpers import REPO, Worker, clean_env, wait_for
from tests.monitoring.processes import PrometheusProcess, RedisExporterProcess
from tests.monitoring.scrape_config import prometheus_config, targets
from tests.monitoring.test_redis_exporter import exporter_env
from tests.monitoring.tools import require_tool
from tools import report
from tools.render import render_stack

BURST = 60
BAD_TASKS = 1
READ_TAGS = ("python", "go", "rust", "javascript", "nosuchtag")
RATE_INTERVAL = "10s"  # $__rate_interval for 1 s scrapes
NAMESPACE, QUEUE, DEAD_LETTER = "platform", "celery", "celery.dead_letter"
#: Metrics of the dashboard and the alerts that come from exporters not running here, with
#: the exporter and version that publishes them (names checked in their sources:
#: kube-state-metrics internal/store/{deployment,job,pod}.go, stable since 2.0, chart 8.4.0
#: pinned by kube-prometheus-stack 88.5.3; KEDA pkg/metricscollector/prommetrics.go, 2.20.2).
EXTERNAL_METRICS = {
    "kube_deployment_status_replicas": "kube-state-metrics 2.x (chart 8.4.0)",
    "kube_job_status_active": "kube-state-metrics 2.x (chart 8.4.0)",
    "kube_pod_container_status_restarts_total": "kube-state-metrics 2.x (chart 8.4.0)",
    "keda_scaler_metrics_value": "KEDA 2.20.2 operator",
    "keda_scaler_detail_errors_total": "KEDA 2.20.2 operator",
}
_METRIC = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")


def metric_names(expr: str) -> set[str]:
    """Metric names selected in a PromQL expression (every selector here has a {...})."""
    return set(_METRIC.findall(expr))


def png_text_chunks(path: Path) -> dict[str, str]:
    """The tEXt/zTXt/iTXt chunks of a PNG, after checking its signature and chunk CRCs."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, texts, kinds = 8, {}, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        kinds.append(kind)
        if kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            texts[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, _, rest = body.partition(b"\0")
            compressed, rest = rest[0], rest[2:]
            _lang, _, rest = rest.partition(b"\0")
            _tkey, _, value = rest.partition(b"\0")
            texts[key.decode()] = (zlib.decompress(value) if compressed else value).decode()
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    return texts


class Reader(threading.Thread):
    """GETs against the cache API until stopped (bounded in count and time)."""

    def __init__(self, url: str, max_requests: int = 3000, max_seconds: float = 60):
        super().__init__(daemon=True)
        self.url, self.max_requests, self.max_seconds = url, max_requests, max_seconds
        self.stop = threading.Event()
        self.statuses: dict[int, int] = {}

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(base_url=self.url, timeout=5) as client:
            for i in range(self.max_requests):
                if self.stop.is_set() or time.monotonic() > deadline:
                    break
                status = client.get(f"/github_stats/{READ_TAGS[i % len(READ_TAGS)]}").status_code
                self.statuses[status] = self.statuses.get(status, 0) + 1
                time.sleep(0.01)


@pytest.fixture(scope="module")
def rendered_local():
    result = render_stack("local")
    assert result.config.namespace == NAMESPACE and result.config.queue_name == QUEUE
    return result


@pytest.mark.slow
def test_live_prometheus_dashboard_and_report(rendered_local, redis_server, sample_dataset, uvicorn_factory,  # noqa: F811
                                              tmp_path):
    prometheus_bin, promtool = require_tool("prometheus"), require_tool("promtool")
    exporter_bin = require_tool("redis_exporter")
    started = time.time()
    by_app = {t.app: t for t in targets(rendered_local.k8s_objects)}
    assert set(by_app) == {"cache-api", "worker", "producer", "redis-exporter"}, sorted(by_app)
    procs: list = []
    try:
        # -- the platform's processes -------------------------------------------------------
        exporter = RedisExporterProcess(exporter_bin, exporter_env("local", redis_server), tmp_path).start()
        procs.append(exporter)
        api = uvicorn_factory({**redis_server.env, "DATASET_DIR": str(sample_dataset),
                               "LOCAL_CACHE_TTL_SECONDS": "0.2", "LOG_LEVEL": "WARNING"})
        worker_env = {**redis_server.env, "WORK_SECONDS_MIN": "0.05", "WORK_SECONDS_MAX": "0.25",
                      "CELERY_VISIBILITY_TIMEOUT": "30"}
        worker_ports = [free_port(), free_port()]
        workers = [Worker({**worker_env, "WORKER_METRICS_PORT": str(port)}, tmp_path / "workers", name=f"live{i}")
                   for i, port in enumerate(worker_ports)]
        procs.extend(w for w in workers)
        workers[0].start().wait_ready()
        producer_port = free_port()
        producer = subprocess.Popen(
            [sys.executable, "-m", "apps.producer", "--forever", "--rate", "5"], cwd=REPO,
            env=clean_env(**{**redis_server.env, "CELERY_QUEUE": "live-producer-stream",
                             "PRODUCER_METRICS_PORT": str(producer_port),
                             "PRODUCER_HEARTBEAT_FILE": str(tmp_path / "producer-hb.json")}),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        # -- Prometheus, labelled like the operator would ----------------------------------
        bound = [
            (by_app["cache-api"], "cache-api-live-0", f"127.0.0.1:{api.port}"),
            (by_app["worker"], "worker-live-0", f"127.0.0.1:{worker_ports[0]}"),
            (by_app["worker"], "worker-live-1", f"127.0.0.1:{worker_ports[1]}"),
            (by_app["producer"], "producer-live-0", f"127.0.0.1:{producer_port}"),
            (by_app["redis-exporter"], "redis-exporter-live-0", f"127.0.0.1:{exporter.port}"),
        ]
        (rule,) = rendered_local.k8s("PrometheusRule")
        (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
        config = tmp_path / "prometheus.yml"
        config.write_text(prometheus_config(bound, ["rules.yaml"]))
        check = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        prom = PrometheusProcess(prometheus_bin, config, tmp_path / "prometheus").start()
        procs.append(prom)
        wait_for(lambda: prom.value('count(up == 1)') == 4, 20, interval=0.5, message="4 targets up")

        # -- load: a burst, a bad task, reads, a second worker mid-burst --------------------
        reader = Reader(api.url)
        reader.start()
        burst = subprocess.run([sys.executable, "-m", "apps.producer", "--count", str(BURST), "--rate", "0"],
                               cwd=REPO, env=clean_env(**redis_server.env), capture_output=True, text=True, timeout=60)
        assert burst.returncode == 0, burst.stderr
        from apps.producer.producer import build_app
        from apps.producer.settings import TASK_NAME, ProducerSettings

        bad_app = build_app(ProducerSettings(**{k.lower(): v for k, v in redis_server.env.items()}))
        bad_app.send_task(TASK_NAME, args=[{"name": ""}], queue=QUEUE)  # invalid record: dead-lettered
        wait_for(lambda: (prom.value(f'max(redis_key_size{{job="redis-exporter",key="{QUEUE}"}})') or 0) > 0, 10,
                 interval=0.2, message="Prometheus sees the backlog")
        workers[1].start().wait_ready()

        succeeded = f'sum(celery_tasks_succeeded_total{{job="worker",namespace="{NAMESPACE}"}})'
        failed = f'sum(celery_tasks_failed_total{{job="worker",namespace="{NAMESPACE}"}})'
        wait_for(lambda: prom.value(succeeded) == BURST and prom.value(failed) == BAD_TASKS, 45, interval=0.5,
                 message=f"{BURST} tasks succeeded and {BAD_TASKS} failed")
        time.sleep(2)  # two more scrapes: the failure counters' new series have a rate
        t_eval = time.time()
        wait_for(lambda: prom.value(f'max(redis_key_size{{job="redis-exporter",key="{QUEUE}"}})') == 0, 10,
                 interval=0.5, message="queue back to 0")
        reader.stop.set()
        reader.join(timeout=10)

        # -- every dashboard query ------------------------------------------------------------
        live_names = set(prom.api("label/__name__/values")["data"])
        queries = report.dashboard_queries(NAMESPACE, QUEUE, DEAD_LETTER, RATE_INTERVAL)
        assert len(queries) >= 20
        problems = []
        panels_with_data: dict[str, bool] = {}
        for title, legend, expr in queries:
            data = prom.query(expr, at=t_eval)
            if data.get("status") != "success":
                problems.append(f"{title} / {legend}: {data.get('error')}")
                continue
            names = metric_names(expr)
            unknown = {n for n in names if n not in live_names and n not in EXTERNAL_METRICS
                       and n.removesuffix("_bucket") not in {x.removesuffix("_bucket") for x in live_names}}
            if unknown:
                problems.append(f"{title} / {legend}: metrics neither published here nor listed as external: {unknown}")
            result = data["data"]["result"]
            values = [float(r["value"][1]) for r in result]
            if names and not (names & set(EXTERNAL_METRICS)):
                if not values or any(v != v for v in values):  # empty or NaN
                    problems.append(f"{title} / {legend}: no data from the live processes ({result})")
                panels_with_data[title] = True
            else:
                panels_with_data.setdefault(title, bool(values))
        assert not problems, "\n".join(problems)
        external_only = sorted(t for t, has in panels_with_data.items() if not has)
        assert external_only == ["Container restarts", "KEDA scaler"], external_only

        # -- the key values ----------------------------------------------------------------
        value = lambda e: prom.value(e)  # noqa: E731
        assert value(succeeded) == BURST
        assert value('sum(celery_task_duration_seconds_count{job="worker",outcome="succeeded"})') == BURST
        assert value('sum(celery_tasks_failed_total{job="worker",reason="bad_payload"})') == BAD_TASKS
        assert value(f'max(redis_key_size{{job="redis-exporter",key="{DEAD_LETTER}"}})') == BAD_TASKS
        assert value(f'max(redis_key_size{{job="redis-exporter",key="{QUEUE}"}})') == 0
        assert value('sum(cache_hits_total{job="cache-api"})') > 0
        for layer in ("local", "redis", "fill"):
            assert value(f'sum(cache_hits_total{{job="cache-api",layer="{layer}"}})') > 0, layer
        assert value('sum(dataset_loads_total{job="cache-api"})') == 1
        assert value('sum(producer_tasks_sent_total{job="producer"})') > 0
        assert value('count(up{job="worker"} == 1)') == 2
        ok = reader.statuses.get(200, 0)
        assert ok >= 200 and set(reader.statuses) <= {200, 404}, reader.statuses
        http_200 = 'sum(http_requests_total{job="cache-api",route="/github_stats/{tag}",status="200"})'
        wait_for(lambda: value(http_200) == ok, 5, interval=0.5, message=f"Prometheus counts the {ok} reads")
        # the series carry the operator's labels, derived from the rendered monitors
        (series,) = prom.query('celery_tasks_in_progress{pod="worker-live-1"}')["data"]["result"]
        assert {k: series["metric"][k] for k in ("job", "namespace", "container", "endpoint")} == {
            "job": "worker", "namespace": NAMESPACE, "container": "worker", "endpoint": "metrics"}
        (series,) = prom.query('up{job="cache-api"}')["data"]["result"]
        assert series["metric"]["service"] == "cache-api" and series["metric"]["container"] == "api"

        # -- the alert rules load and evaluate against the live series -----------------------
        groups = prom.api("rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        rendered_rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
        # Prometheus loaded every rule the stack renders (2 recording rules and the alerts).
        assert sorted(r["name"] for r in rules) == sorted(r.get("alert") or r["record"] for r in rendered_rules)
        assert len(rules) == 17, [r["name"] for r in rules]
        assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]
        for r in rules:
            assert metric_names(r["query"]) <= live_names | set(EXTERNAL_METRICS), r["name"]
        firing = {r["name"] for r in rules if r.get("type") == "alerting" and r["state"] != "inactive"}
        assert firing <= {"DeadLettersIncreasing"}, firing  # the bad task did land in the dead-letter list
        # The limits the alerts and the dashboard compare against: the local stack's figures.
        assert value(f'max(platform:redis_client_limit{{namespace="{NAMESPACE}"}})') == 1000
        assert value(f'max(platform:redis_memory_limit_bytes{{namespace="{NAMESPACE}"}})') == 240 * 1024 * 1024
        assert value('max(cache_degraded{job="cache-api"})') == 0
        assert value('sum(redis_write_refusals_total{job="cache-api"})') == 0
        assert value('max(redis_rejected_connections_total{job="redis-exporter"})') == 0

        # -- scale back down, then `make report`'s code draws the run ------------------------
        workers[1].close()
        wait_for(lambda: prom.value('count(up{job="worker"} == 1)') == 1, 10, interval=0.5, message="worker 1 gone")
        out = Path(os.environ.get("REPORT_PNG", tmp_path / "report.png"))
        end = time.time() + 1
        run = subprocess.run([sys.executable, "-m", "tools.report", "--prometheus", prom.url,
                              "--start", f"{started:.0f}", "--end", f"{end:.0f}", "--step", "1s",
                              "--rate-window", "5s", "--out", str(out)],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        summary = json.loads(png_text_chunks(out)["Description"])
        assert set(summary) == {"queue length", "worker replicas", "tasks/s succeeded"}
        assert all(s["points"] >= 10 for s in summary.values()), summary
        assert summary["queue length"]["max"] >= 1 and summary["tasks/s succeeded"]["max"] > 0
        assert summary["worker replicas"]["max"] == 2, summary

        # -- and the whole dashboard, panel by panel (docs/monitoring.md's picture) -----------
        picture = Path(os.environ.get("DASHBOARD_PNG", tmp_path / "dashboard.png"))
        run = subprocess.run([sys.executable, "-m", "tools.dashboard_png", "--prometheus", prom.url,
                              "--start", f"{started:.0f}", "--end", f"{end:.0f}", "--step", "1s",
                              "--rate-interval", RATE_INTERVAL, "--out", str(picture)],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        drawn = json.loads(png_text_chunks(picture)["Description"])
        assert set(drawn) == set(panels_with_data), drawn
        assert sorted(t for t, n in drawn.items() if not n) == external_only, drawn
    finally:
        if "reader" in locals():
            reader.stop.set()
        if "producer" in locals() and producer.poll() is None:
            producer.send_signal(signal.SIGTERM)
            try:
                producer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                producer.kill()
        for proc in reversed(procs):
            proc.close() if isinstance(proc, Worker) else proc.stop()
