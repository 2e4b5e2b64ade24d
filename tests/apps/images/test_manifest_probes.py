"""Every container of ours in the rendered manifests (every stack variant), run in its image's
environment with its own command and env: its main process stays up and every liveness,
readiness and startup probe passes. Derived from the manifests, so a container or probe
added to components/ is tested without touching this file."""

from __future__ import annotations

import pytest

from tests.apps.images import pods
from tests.apps.images.catalog import dockerfiles_by_image
from tests.infra.validation.render import VARIANT_IDS, rendered, rendered_variants

OUR_IMAGES = set(dockerfiles_by_image())
RUNS = pods.app_containers(((r.variant.id, r.objects) for r in rendered_variants(VARIANT_IDS)), OUR_IMAGES)


def test_the_manifests_run_every_image_with_probes():
    assert {run.image for run in RUNS} == OUR_IMAGES
    for run in RUNS:
        kinds = {kind for kind, _ in run.probes}
        assert {"livenessProbe", "readinessProbe"} <= kinds, f"{run.id}: probes {sorted(kinds)}"


@pytest.mark.parametrize("run", RUNS, ids=lambda r: r.id)
def test_container_runs_and_passes_its_probes(run, images, redis_server):
    passed = pods.run_container(run, images[run.image], redis_server, rendered(run.variant).objects)
    probes = [line for line in passed if line.startswith(pods.PROBES)]
    assert len(probes) == len(run.probes), passed
