# Every target is documented in README.md ("Make targets").
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STACK ?= local
KIND_CLUSTER ?= redis-keda
# Image refs: keep in step with components/versions.py (tests/test_contract.py checks).
REGISTRY ?=
IMAGE_TAG ?= 0.1.0
IMAGE_PREFIX := $(if $(REGISTRY),$(REGISTRY)/,)redis-keda-platform
CACHE_API_IMAGE := $(IMAGE_PREFIX)/cache-api:$(IMAGE_TAG)
WORKER_IMAGE := $(IMAGE_PREFIX)/worker:$(IMAGE_TAG)
PRODUCER_IMAGE := $(IMAGE_PREFIX)/producer:$(IMAGE_TAG)
IMAGES := $(CACHE_API_IMAGE) $(WORKER_IMAGE) $(PRODUCER_IMAGE)
# load: how many tasks, how fast (0 = as fast as possible)
COUNT ?= 500
RATE ?= 0
PULUMI_ARGS ?=
# make test: pytest-xdist processes. Most tests wait on processes and servers, so twice the
# 2 cores of the reference machine; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 4
# make test: more pytest arguments, e.g. PYTEST_ARGS="--durations=30 -k worker"
PYTEST_ARGS ?=

.PHONY: help setup setup-deploy test lock render scan bench images smoke push kind-up up load watch grafana report down toolchain sim-up sim-down e2e

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## virtualenv + pinned dependencies (+ checkov's own venv); checks redis-server
	bash scripts/setup.sh

setup-deploy: ## only what pulumi up needs: .venv with the program's pinned dependencies (no test servers, no helm)
	bash scripts/setup.sh deploy

test: $(PY) ## the whole suite: infra under Pulumi mocks, schemas, checkov, apps on a real redis-server (TEST_WORKERS=4 processes, PYTEST_ARGS=...)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist load --maxschedchunk 2 $(PYTEST_ARGS)

# Targets that run the project's Python need the virtualenv `make setup` creates.
$(PY):
	@echo "error: $(PY) is missing: run 'make setup' first (it creates the virtualenv with every pinned dependency)" >&2; exit 2

toolchain: ## build the Pulumi CLI, its YAML host, the kubernetes provider, Kubernetes, etcd, kwok and KEDA from their Go modules into .tools/bin (toolchain/README.md)
	@scripts/require.sh go
	bash toolchain/build.sh

sim-up: ## start the local control plane (no Docker) in a network namespace; kubeconfig .tools/sim/kubeconfig, context redis-keda-sim
	bash scripts/sim.sh up

sim-down: ## stop the local control plane; leaves no process and no file behind
	bash scripts/sim.sh down

e2e: ## the end-to-end tier on the local control plane: toolchain, sim-up, e2e/ tests, sim-down (docs/sim.md)
	bash scripts/e2e.sh

lock: $(PY) ## regenerate the image locks apps/*/requirements.lock from apps/*/requirements.txt (uv), prove them on x86_64 and aarch64
	$(PY) tools/lock.py

render: $(PY) ## write the manifests STACK would create to out/STACK (Pulumi mocks, offline)
	$(PY) tools/render.py --stack $(STACK) --out out/$(STACK)

scan: ## checkov over the rendered manifests of every stack and worker mode
	bash scripts/scan.sh

bench: $(PY) ## run the benchmarks (cache API vs its ceiling, worker safe vs default settings, what a task costs Redis)
	$(PY) -m bench.cache_api_bench --plot docs/img/cache_api_bench.png
	$(PY) -m bench.worker_bench --tasks 2000 --rounds 5 --plot docs/img/worker_bench.png
	$(PY) -m bench.per_task --tasks 2000 --rounds 3

images: ## build the three app images (REGISTRY=..., IMAGE_TAG=...)
	@scripts/require.sh docker
	docker build -f apps/cache_api/Dockerfile -t $(CACHE_API_IMAGE) .
	docker build -f apps/worker/Dockerfile -t $(WORKER_IMAGE) .
	docker build -f apps/producer/Dockerfile -t $(PRODUCER_IMAGE) .

smoke: ## run the built images against Redis with docker: a producer burst processed, the cache API serving, health commands
	@scripts/require.sh docker
	CACHE_API_IMAGE=$(CACHE_API_IMAGE) WORKER_IMAGE=$(WORKER_IMAGE) PRODUCER_IMAGE=$(PRODUCER_IMAGE) bash scripts/images_smoke.sh

push: ## push the images to REGISTRY (e.g. an ACR: az acr login -n NAME first)
	@scripts/require.sh docker
	@test -n "$(REGISTRY)" || { echo "error: set REGISTRY=<registry host>, e.g. REGISTRY=myacr.azurecr.io" >&2; exit 1; }
	for image in $(IMAGES); do docker push $$image || exit 1; done

kind-up: ## create the kind cluster (deploy/kind/cluster.yaml), metrics-server, load the images
	KIND_CLUSTER=$(KIND_CLUSTER) IMAGES="$(IMAGES)" bash scripts/kind_up.sh

up: ## pulumi up on STACK=local|aks (PULUMI_ARGS=--yes to skip the prompt)
	@scripts/require.sh pulumi
	@if [ "$(STACK)" = aks ]; then scripts/require.sh az; fi
	pulumi stack select --create $(STACK)
	pulumi up --stack $(STACK) $(PULUMI_ARGS)

load: ## submit COUNT tasks at RATE/s from the deployed producer, then wait for every result
	@scripts/require.sh pulumi kubectl
	STACK=$(STACK) COUNT=$(COUNT) RATE=$(RATE) bash scripts/load.sh

watch: ## print worker and cache API replica counts over time (Ctrl-C to stop)
	@scripts/require.sh pulumi kubectl
	STACK=$(STACK) bash scripts/watch.sh

grafana: ## port-forward STACK's Grafana to localhost:3000; prints the URL and how to get the password
	@scripts/require.sh pulumi kubectl
	STACK=$(STACK) bash scripts/grafana.sh

report: ## PNG of queue length, worker replicas, tasks/s from Prometheus (SINCE=15m OUT=out/report.png PROMETHEUS_URL=)
	@if [ -z "$(PROMETHEUS_URL)" ]; then scripts/require.sh pulumi kubectl; fi
	STACK=$(STACK) PROMETHEUS_URL=$(PROMETHEUS_URL) bash scripts/report.sh

down: ## pulumi destroy STACK, then (local) delete the kind cluster
	@scripts/require.sh pulumi
	pulumi destroy --stack $(STACK) $(PULUMI_ARGS)
	@if [ "$(STACK)" = local ]; then scripts/require.sh kind && kind delete cluster --name $(KIND_CLUSTER); fi
