"""Every rendered object validates: built-in kinds against the Kubernetes minor its stack
pins (strict: kind's node image 1.31, aks' ``kubernetesVersion`` 1.36),
``keda.sh`` kinds against KEDA 2.20.2's CRDs tightened so unknown fields fail, and redis
trigger metadata against the scaler's own parameter list.

Rendered with ``tools/render.py`` for every valid stack × worker mode × read path
(``tests/infra/validation/render.py``); ``test_validators.py`` proves these checks fail
on broken input.
"""

from __future__ import annotations

import pytest

from tests.infra.validation import keda_schema, paths, scaler_params
from tests.infra.validation.k8s_schema import validate_k8s_object
from tests.infra.validation.keda_schema import is_keda
from tests.infra.validation.prom_schema import is_monitoring
from tests.infra.validation.render import BY_ID, VARIANT_IDS, Rendered, rendered


@pytest.fixture(params=VARIANT_IDS)
def r(request) -> Rendered:
    return rendered(request.param)


def _fmt(problems: list[str]) -> str:
    return "\n".join(problems)


def test_builtin_objects_validate_strict_against_the_stacks_kubernetes(r):
    # monitoring.coreos.com kinds: tests/infra/test_monitoring.py (tightened operator CRDs)
    builtin = [o for o in r.objects if not is_keda(o) and not is_monitoring(o)]
    assert builtin, "no built-in Kubernetes objects rendered"
    problems = [p for o in builtin for p in validate_k8s_object(o, r.k8s_version)]
    assert not problems, _fmt(problems)


def test_keda_objects_validate_against_tightened_crds(r):
    keda = [o for o in r.objects if is_keda(o)]
    kinds = {o["kind"] for o in keda}
    scaled = "ScaledJob" if r.variant.setting("workerMode") == "job" else "ScaledObject"
    assert {scaled, "TriggerAuthentication"} <= kinds, f"expected a {scaled} and a TriggerAuthentication, got {sorted(kinds)}"
    problems = [p for o in keda for p in keda_schema.validate_keda_object(o, r.k8s_version)]
    assert not problems, _fmt(problems)


def test_redis_trigger_metadata_keys(r):
    params = scaler_params.load_params()
    triggers = [
        t
        for o in r.objects
        if is_keda(o) and o["kind"] in ("ScaledObject", "ScaledJob")
        for t in o["spec"].get("triggers", [])
        if t.get("type") in params.trigger_types
    ]
    assert triggers, "no redis trigger rendered"
    problems = scaler_params.check_redis_triggers(r.objects, params)
    assert not problems, _fmt(problems)


def test_trigger_measures_the_workers_queue(r):
    """Same Redis endpoint, TLS, db and list as the worker it scales (enableTLS derived)."""
    problems = scaler_params.check_trigger_matches_target(r.objects)
    assert not problems, _fmt(problems)


def test_vendored_keda_schemas_match_shared():
    """The repo's copy under schemas/ must not drift from ../shared (when both exist)."""
    shared = paths.REPO_ROOT.parent / "shared" / "schemas" / "keda" / paths.KEDA_VERSION
    vendored = paths.REPO_ROOT / "schemas" / "keda" / paths.KEDA_VERSION
    if not (shared.is_dir() and vendored.is_dir()):
        pytest.skip("only one copy of the KEDA schemas present")
    names = sorted(p.name for p in shared.iterdir() if p.is_file())
    assert names == sorted(p.name for p in vendored.iterdir() if p.is_file())
    for name in names:
        assert (shared / name).read_bytes() == (vendored / name).read_bytes(), f"{name} differs"


def test_variants_are_validated_against_their_stacks_pin():
    from components import versions
    from tests.infra.validation.k8s_versions import kind_version

    for variant_id, variant in BY_ID.items():
        expected = kind_version() if variant.stack == "local" else versions.AKS_KUBERNETES_VERSION
        assert rendered(variant_id).k8s_version == expected, variant_id
    assert kind_version() != versions.AKS_KUBERNETES_VERSION  # two pins, two schema sets
