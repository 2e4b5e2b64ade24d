"""The Kubernetes minor each stack pins, read from the pin itself (no second constant).

- ``local``: the kind node image in ``deploy/kind/cluster.yaml`` (``kindest/node:v1.31.6@...``);
- ``aks``: the stack's ``kubernetesVersion`` (``stacks/Pulumi.aks.yaml``, default
  ``components/versions.py``), with any render overrides applied.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import yaml

from .paths import REPO_ROOT

KIND_CONFIG = REPO_ROOT / "deploy" / "kind" / "cluster.yaml"
_NODE_IMAGE = re.compile(r"^kindest/node:v(?P<minor>\d+\.\d+)\.\d+(@sha256:[0-9a-f]{64})?$")


def major_minor(version: str) -> str:
    """'1.36' or '1.36.2' -> '1.36'."""
    match = re.match(r"^(\d+\.\d+)(\.\d+)?$", str(version))
    if not match:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return match.group(1)


@functools.cache
def kind_version() -> str:
    """The minor of the kind node image every node of deploy/kind/cluster.yaml runs."""
    doc = yaml.safe_load(KIND_CONFIG.read_text())
    minors = set()
    for node in doc.get("nodes") or []:
        match = _NODE_IMAGE.match(str(node.get("image", "")))
        if not match:
            raise ValueError(f"{KIND_CONFIG}: node image {node.get('image')!r} is not a pinned kindest/node:vX.Y.Z")
        minors.add(match.group("minor"))
    if len(minors) != 1:
        raise ValueError(f"{KIND_CONFIG}: nodes run different Kubernetes minors {sorted(minors)}")
    return minors.pop()


def stack_version(stack: str, overrides: Mapping[str, str] | None = None) -> str:
    """The Kubernetes minor a stack deploys to (see module docstring)."""
    from components.config import load_config
    from tools.render import read_stack_config

    raw = read_stack_config(stack)
    raw.update(dict(overrides or {}))
    cfg = load_config(raw)
    if cfg.target == "kind":
        return kind_version()
    return major_minor(cfg.kubernetes_version)
