"""Where the repository and the shared KEDA schemas are."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
KEDA_VERSION = "v2.20.2"
_KEDA_REL = Path("schemas") / "keda" / KEDA_VERSION
ENV_OVERRIDE = "KEDA_SCHEMA_DIR"


def keda_schema_candidates() -> list[Path]:
    """Where the KEDA CRDs may be, in order of preference.

    1. ``$KEDA_SCHEMA_DIR`` if set;
    2. ``<repo>/schemas/keda/v2.20.2`` (the verbatim copy vendored in the repository, so
       a clone validates on its own, e.g. on GitHub Actions);
    3. ``<repo>/../shared/schemas/keda/v2.20.2`` (the shared folder beside the clone).

    ``tests/infra/test_schemas.py`` asserts 2 and 3 are byte-identical when both exist.
    """
    candidates: list[Path] = []
    if os.environ.get(ENV_OVERRIDE):
        candidates.append(Path(os.environ[ENV_OVERRIDE]))
    candidates.append(REPO_ROOT / _KEDA_REL)
    candidates.append(REPO_ROOT.parent / "shared" / _KEDA_REL)
    return candidates


def _is_schema_dir(path: Path) -> bool:
    return (path / "keda.sh_scaledobjects.yaml").is_file() and (
        path / "redis-scaler-params.yaml"
    ).is_file()


def keda_schema_dir() -> Path:
    """The first candidate holding the CRDs; ``FileNotFoundError`` naming all tried."""
    candidates = keda_schema_candidates()
    for path in candidates:
        if _is_schema_dir(path):
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"KEDA {KEDA_VERSION} CRD schemas not found (tried: {tried}); "
        f"set {ENV_OVERRIDE}, or restore schemas/ in the repository"
    )


# --- the vendored charts (charts/, tools/vendor_charts.py) -------------------------------
CHARTS_DIR = REPO_ROOT / "charts"
KPS_VERSION = "88.5.3"


def chart_dir(name: str) -> Path:
    """``charts/<name>``: a chart vendored as released; ``FileNotFoundError`` if absent."""
    path = CHARTS_DIR / name
    if not (path / "Chart.yaml").is_file():
        raise FileNotFoundError(f"{path}/Chart.yaml not found: the vendored charts are part of the repository "
                                f"(tools/vendor_charts.py writes them)")
    return path


def kps_chart_dir() -> Path:
    """kube-prometheus-stack 88.5.3 as released: its values.yaml, sub-charts and CRDs."""
    return chart_dir("kube-prometheus-stack")


def kps_crd_dir() -> Path:
    """The Prometheus Operator CRDs the chart installs (its ``crds`` sub-chart)."""
    return kps_chart_dir() / "charts" / "crds" / "crds"
