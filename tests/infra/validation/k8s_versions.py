"""The Kubernetes minor each stack pins, read from the pin itself (no second constant).

- ``local``: the kind node image in ``deploy/kind/cluster.yaml`` (``kindest/node:v1.31.6@...``);
- ``aks``: the stack's ``kubernetesVersion`` (``stacks/Pulumi.aks.yaml``, default
  ``components/versions.py``), with any render overrides applied.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from tools import helm_render

from .paths import REPO_ROOT

KIND_CONFIG = REPO_ROOT / "deploy" / "kind" / "cluster.yaml"


def major_minor(version: str) -> str:
    """'1.36' or '1.36.2' -> '1.36'."""
    return helm_render.major_minor(version)


@functools.cache
def kind_version() -> str:
    """The minor of the kind node image every node of deploy/kind/cluster.yaml runs
    (the same function ``helm template --kube-version`` gets it from)."""
    return helm_render.kind_node_minor(KIND_CONFIG)


def stack_version(stack: str, overrides: Mapping[str, str] | None = None) -> str:
    """The Kubernetes minor a stack deploys to (see module docstring)."""
    from components.config import load_config
    from tools.render import offline_config

    raw = offline_config(stack)
    raw.update(dict(overrides or {}))
    cfg = load_config(raw)
    if cfg.target == "kind":
        return kind_version()
    return major_minor(cfg.kubernetes_version)
