"""Each image's environment, rebuilt from its Dockerfile alone (only its lock, only what its
COPY lines ship, its ENV and WORKDIR), running its CMD against a real redis-server."""

from __future__ import annotations

import json

import pytest

from components import versions
from tests.apps.images import flows
from tests.apps.images.catalog import dockerfiles_by_image

IMAGE_REFS = sorted(dockerfiles_by_image())


def test_every_deployed_image_is_built_by_a_dockerfile():
    assert set(IMAGE_REFS) == {versions.CACHE_API_IMAGE, versions.WORKER_IMAGE, versions.PRODUCER_IMAGE}


@pytest.mark.parametrize("ref", IMAGE_REFS)
def test_only_shipped_packages_are_importable(images, ref):
    """The checkout is not on sys.path: what imports is exactly what the COPY lines shipped."""
    image = images[ref]
    workdir = image.dockerfile.workdir.rstrip("/") + "/"
    shipped = {".".join(p[len(workdir):].split("/")[:2]) for p in image.shipped
               if p.startswith(workdir + "apps/") and p.endswith(".py")}
    candidates = ["apps.cache_api", "apps.worker", "apps.producer", "apps.common", "components", "tools",
                  "tests", "bench"]
    probe = ("import importlib.util, json, sys; "
             f"print(json.dumps([m for m in {candidates!r} if importlib.util.find_spec(m)]))")
    importable = set(json.loads(image.check(["python", "-c", probe]).splitlines()[-1]))
    assert importable == shipped, f"{image.name}: importable {sorted(importable)}, shipped {sorted(shipped)}"
    version = image.check(["python", "-c", "import sys; print(sys.version_info[:2])"]).strip()
    assert version == "(3, 11)", f"{image.name}: Python {version}"


def test_worker_processes_a_burst_sent_by_the_producer_image(worker_image, producer_image, redis_server):
    output = flows.worker_processes_producer_burst(worker_image, producer_image, redis_server)
    assert f"all {flows.BURST} results present" in output


def test_producer_cmd_sends_and_passes_its_health_command(producer_image, redis_server):
    flows.producer_cmd_sends_and_is_healthy(producer_image, redis_server)


def test_producer_standby_passes_its_health_command(producer_image, redis_server):
    flows.producer_standby_is_healthy_and_silent(producer_image, redis_server)


def test_cache_api_cmd_serves_a_tag(cache_api_image, redis_server):
    result = flows.cache_api_serves_a_tag(cache_api_image, redis_server)
    assert result["statuses"] == {"/healthz": 200, "/readyz": 200}
    assert result["records"] == 50  # the shipped sample dataset (apps/cache_api/dataset)
