"""The hardening rules, asserted on what the program renders, for every stack variant.

A regression fails here, with the object and the rule, before checkov runs. The rules
live in ``tests/infra/validation/security.py`` (listed in ``docs/security.md``);
``test_validators.py`` proves each of them fails on a broken object.
"""

from __future__ import annotations

import functools
import re

import pytest

from tests.infra.validation import manifests, paths, security
from tests.infra.validation.render import (
    BY_ID,
    VARIANT_IDS,
    Rendered,
    keda_namespace,
    rendered,
)
from tools.redaction import REDACTED
from tools.render import render_stack
from tools.render_mocks import MOCK_SECRET_VALUES

AKS_IDS = [v for v in VARIANT_IDS if BY_ID[v].stack == "aks"]
LOCAL_IDS = [v for v in VARIANT_IDS if BY_ID[v].stack == "local"]


@pytest.fixture(params=VARIANT_IDS)
def r(request) -> Rendered:
    return rendered(request.param)


@functools.cache
def _in_process(variant_id: str):
    """The same variant through the Python API: raw inputs with their secret paths."""
    v = BY_ID[variant_id]
    return render_stack(v.stack, dict(v.settings))


def _fmt(violations) -> str:
    return "\n".join(str(v) for v in violations)


def test_every_pod_is_locked_down(r):
    templates = manifests.pod_templates(r.objects)
    containers = [c for t in templates for _, c in t.containers()]
    assert len(templates) >= 3 and containers, "expected worker, producer and cache API pods"
    violations = security.check_pods(r.objects)
    assert not violations, _fmt(violations)


def test_redis_password_only_from_secrets(r):
    violations = security.check_secrets(r.objects)
    assert not violations, _fmt(violations)
    users = [
        (t.where, c.get("name"))
        for t in manifests.pod_templates(r.objects)
        for _, c in t.containers()
        if ("REDIS_PASSWORD_FILE" in manifests.container_env(c) and manifests.password_secret_ref(t.spec, c) is not None)
        or ((manifests.container_env(c).get("REDIS_SIGN_IN") or {}).get("value") == "entra" and manifests.password_secret_ref(t.spec, c) is None)
    ]
    assert len(users) >= 3, f"the password file (or an Entra sign-in) should reach worker, producer and cache API: {users}"


def test_no_secret_value_in_rendered_files(r):
    """Neither a real (mock) secret nor the renderer's redaction marker outside Secret data."""
    leaks = []
    for path in sorted(p for p in r.out_dir.rglob("*") if p.is_file()):
        text = path.read_text()
        leaks += [f"{path.relative_to(r.out_dir)}: contains a secret value" for s in MOCK_SECRET_VALUES if s in text]
    violations = security.check_redaction_markers(r.objects, [REDACTED])
    assert not leaks and not violations, "\n".join(leaks) + _fmt(violations)


def test_secret_values_are_marked_secret(r):
    """Every input and stack output holding a secret value is a secret Output (raw API)."""
    result = _in_process(r.variant.id)
    violations = security.check_secret_values(result.resources, MOCK_SECRET_VALUES)
    violations += security.check_output_values(result.outputs, result.secret_outputs, MOCK_SECRET_VALUES)
    violations += security.check_outputs(result.outputs, result.secret_outputs)
    assert not violations, _fmt(violations)
    assert "kubeconfig" in result.secret_outputs


def test_objects_live_in_explicit_namespaces(r):
    violations = security.check_namespaces(r.objects)
    assert not violations, _fmt(violations)


def test_services_are_cluster_internal(r):
    assert manifests.by_kind(r.objects, "Service"), "no Service rendered"
    violations = security.check_services(r.objects, ("ClusterIP",))
    assert not violations, _fmt(violations)


def test_network_policies(r):
    """Default deny, DNS, Redis only from its clients and KEDA on its port, cache API on 8000."""
    assert manifests.by_kind(r.objects, "NetworkPolicy"), "no NetworkPolicy rendered"
    operator = next(pt for pt in manifests.pod_templates(r.chart_objects) if manifests.name(pt.owner) == "keda-operator")
    assert security.DEFAULT_KEDA_LABELS.items() <= operator.labels.items()
    violations = security.check_network_policies(r.objects, keda_namespace(r), keda_labels=operator.labels)
    assert not violations, _fmt(violations)
    roles = security.find_roles(r.objects)
    assert roles.worker and roles.producer and roles.cache_api
    if r.variant.stack == "local":
        assert roles.redis and not roles.redis_external, "local: Redis should be in the cluster"
    else:
        assert roles.redis_external and not roles.redis, "aks: Redis should be an Azure Redis service"


def test_keda_release_pinned_and_hardened(r):
    violations = security.check_keda_release(r.other_resources)
    assert not violations, _fmt(violations)


@pytest.mark.parametrize("variant_id", AKS_IDS)
def test_azure_resources_hardened(variant_id):
    r = rendered(variant_id)
    resources = r.azure_resources
    types = {res["type"] for res in resources}
    redis_types = ({"azure-native:redis:Redis"} if r.variant.setting("azureRedis") == "classic"
                   else {security.MANAGED_REDIS_CLUSTER, security.MANAGED_REDIS_DATABASE})
    assert redis_types | {"azure-native:containerservice:ManagedCluster"} <= types, sorted(types)
    violations = security.check_azure(resources)
    assert not violations, _fmt(violations)


def test_program_never_reads_admin_credentials():
    """No admin kubeconfig anywhere: the program only lists the user credentials."""
    sources = [paths.REPO_ROOT / "__main__.py", *sorted((paths.REPO_ROOT / "components").rglob("*.py"))]
    offenders = [
        str(p.relative_to(paths.REPO_ROOT))
        for p in sources
        if p.is_file() and re.search(r"admin_?credentials|listManagedClusterAdminCredentials", p.read_text(), re.I)
    ]
    assert len(sources) > 1 and not offenders, offenders


@pytest.mark.parametrize("variant_id", LOCAL_IDS)
def test_local_has_no_azure_resources(variant_id):
    assert rendered(variant_id).azure_resources == []
