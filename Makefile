# Every target is documented in README.md ("Make targets").
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup test
setup: ## virtualenv + pinned dependencies; checks redis-server
	bash scripts/setup.sh

test: ## the whole test suite: infra under Pulumi mocks, schemas, checkov, apps on a real redis-server
	$(PY) -m pytest
