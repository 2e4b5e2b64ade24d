"""Validators for what ``tools/render.py`` writes: schemas, the scaler contract, the hardening rules.

Pure functions over plain dicts (Kubernetes objects as loaded from YAML, Azure resources
as ``{type, name, properties}``). Each check returns a list of problems; an empty list
means the check passed. The tests under ``tests/infra`` run them over every rendered stack
variant, and ``tests/infra/test_validators.py`` proves each one can fail.

- ``k8s_schema``: built-in kinds against the OpenAPI schema (strict) of the Kubernetes
  minor each stack pins (``k8s_versions``).
- ``keda_schema``: ``keda.sh`` kinds against KEDA 2.20.2's CRD schemas, tightened so
  unknown fields fail.
- ``scaler_params``: redis trigger metadata keys against the scaler's own parameter list.
- ``security``: the hardening rules (pods, secrets, network policy, services,
  Azure).
"""
