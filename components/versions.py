"""Every pinned version in one place: Helm charts, default images, Kubernetes.

Bump here, nowhere else. Digests are added where we know them; the app images are
built locally (``make images``) so they are pinned by an immutable, versioned tag.
"""

from __future__ import annotations

# --- KEDA (official Helm chart, vendored in charts/keda/; CRDs in schemas/keda/v2.20.2/) ---
KEDA_CHART = "keda"
KEDA_CHART_REPO = "https://kedacore.github.io/charts"
KEDA_CHART_VERSION = "2.20.2"
KEDA_APP_VERSION = "2.20.2"
KEDA_OPERATOR_IMAGE = "ghcr.io/kedacore/keda"
KEDA_METRICS_API_SERVER_IMAGE = "ghcr.io/kedacore/keda-metrics-apiserver"
KEDA_WEBHOOKS_IMAGE = "ghcr.io/kedacore/keda-admission-webhooks"

# --- Redis (in-cluster, kind) ---
# Official Debian-based image: the `redis` user is uid/gid 999.
REDIS_IMAGE = "redis:7.4.2"
REDIS_UID = 999
REDIS_PORT = 6379

# --- Azure Cache for Redis (azureRedis: classic; Microsoft.Cache/redis) ---
AZURE_REDIS_VERSION = "6"
AZURE_REDIS_TLS_PORT = 6380

# --- Azure Managed Redis (azureRedis: managed; Microsoft.Cache/redisEnterprise) ---
# TLS only, on the database's port 10000 (the only port Azure Managed Redis serves).
AZURE_MANAGED_REDIS_PORT = 10000
# The smallest SKU (0.5 GB); high availability on. docs/infra.md: sizes and costs.
AZURE_MANAGED_REDIS_SKU = "Balanced_B0"

# --- AKS ---
# The newest AKS GA minor with the longest support window on 2026-12-02 (docs/infra.md,
# "Kubernetes version"). The patch auto-upgrade channel never changes the minor.
AKS_KUBERNETES_VERSION = "1.36"

# --- The apps (docs/contract.md) ---
CACHE_API_IMAGE = "redis-keda-platform/cache-api:0.1.0"
WORKER_IMAGE = "redis-keda-platform/worker:0.1.0"
PRODUCER_IMAGE = "redis-keda-platform/producer:0.1.0"
APP_UID = 10001

CACHE_API_PORT = 8000
# The cache API image's server flags (its Dockerfile's CMD; a test keeps the two equal):
# httptools with bounds on a request's head (apps/cache_api/http_limits.py), idle
# keep-alive closed after 5 s.
CACHE_API_SERVER_FLAGS = ("--http", "apps.cache_api.http_limits:BoundedHttpToolsProtocol", "--timeout-keep-alive", "5")
WORKER_METRICS_PORT = 9808
PRODUCER_METRICS_PORT = 9809

# --- Monitoring: kube-prometheus-stack (the chart and its sub-charts vendored as released
# in charts/kube-prometheus-stack/; tests/infra/test_charts.py keeps them equal to these) ---
KUBE_PROMETHEUS_STACK_CHART = "kube-prometheus-stack"
KUBE_PROMETHEUS_STACK_CHART_REPO = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_CHART_VERSION = "88.5.3"
PROMETHEUS_OPERATOR_VERSION = "v0.93.1"
# KEDA's operator serves its Prometheus metrics here (chart value prometheus.operator.port;
# the chart names the container port "metrics", components/monitoring.py).
KEDA_OPERATOR_METRICS_PORT = 8080

# --- redis_exporter (scratch image, non-root uid 59000, CA bundle included) ---
REDIS_EXPORTER_IMAGE = "oliver006/redis_exporter:v1.91.1"
REDIS_EXPORTER_UID = 59000
REDIS_EXPORTER_PORT = 9121

# --- the multi-language package (provider/; schema "version", SDKs generated from it) ---
PACKAGE_VERSION = "0.1.0"

#: Tags on every Azure resource that takes them (tests/infra/test_azure_tags.py).
AZURE_TAGS = {"project": "redis-keda-platform"}
