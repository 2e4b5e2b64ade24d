"""The stack config is checked before any SDK is loaded: the config model and the rules it
reads (components/limits.py, address_plan.py, connections.py, versions.py) import no Pulumi,
Kubernetes or Azure SDK (config.py used to import resource modules, and through them all three)."""

from __future__ import annotations

import subprocess
import sys

from tests.lint.inventory import REPO

SDKS = ("pulumi", "pulumi_kubernetes", "pulumi_azure_native", "pulumi_random", "grpc")


def test_importing_the_config_model_loads_no_sdk():
    code = ("import sys, components.config; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SDKS!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"components.config loads SDK modules: {out.stdout.strip()[:500]}"


def test_every_public_component_is_importable_from_the_package():
    import components

    for name in components.__all__:
        assert getattr(components, name).__name__ == name
