"""Tests of the image tests: break an image the way a change could, and the harness must fail,
naming the image. Each breaks a copy of the build context (apps/ and .dockerignore), never
the checkout; the venvs come from the same cache (a broken lock gets its own entry)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from components import versions
from tests.apps.images import flows, pods
from tests.apps.images.catalog import REPO
from tests.apps.images.image import ImageError, build_image


def context_copy(tmp_path: Path) -> Path:
    ctx = tmp_path / "context"
    shutil.copytree(REPO / "apps", ctx / "apps", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / ".dockerignore", ctx / ".dockerignore")
    return ctx


def drop_from_lock(lock: Path, package: str) -> None:
    """Remove ``package``'s entry (its pin, hashes and annotations) from a lock."""
    text = lock.read_text()
    pattern = rf"^{re.escape(package)}==[^\n]*\\\n(?:[ \t]+[^\n]*\n)*"
    smaller = re.sub(pattern, "", text, flags=re.M)
    assert smaller != text and f"\n{package}==" not in smaller
    lock.write_text(smaller)


def test_lock_without_packaging_fails_naming_the_worker_image(tmp_path, producer_image, redis_server):
    ctx = context_copy(tmp_path)
    drop_from_lock(ctx / "apps" / "worker" / "requirements.lock", "packaging")
    worker = build_image(versions.WORKER_IMAGE, ctx / "apps" / "worker" / "Dockerfile", ctx, tmp_path / "root")
    with pytest.raises(ImageError) as failed:
        flows.worker_processes_producer_burst(worker, producer_image, redis_server)
    message = str(failed.value)
    assert message.startswith(f"image {versions.WORKER_IMAGE} ")
    assert "[import error: ModuleNotFoundError: No module named 'packaging']" in message


def test_dockerfile_without_copy_common_fails_naming_the_producer_image(tmp_path, redis_server):
    ctx = context_copy(tmp_path)
    dockerfile = ctx / "apps" / "producer" / "Dockerfile"
    text = dockerfile.read_text()
    assert "COPY apps/common /app/apps/common\n" in text
    dockerfile.write_text(text.replace("COPY apps/common /app/apps/common\n", ""))
    producer = build_image(versions.PRODUCER_IMAGE, dockerfile, ctx, tmp_path / "root")
    with pytest.raises(ImageError) as failed:
        flows.producer_cmd_sends_and_is_healthy(producer, redis_server)
    message = str(failed.value)
    assert message.startswith(f"image {versions.PRODUCER_IMAGE} ")
    assert "No module named 'apps.common'" in message


def test_dockerignore_hiding_a_copied_path_fails_the_build_naming_the_image(tmp_path):
    ctx = context_copy(tmp_path)
    ignore = ctx / "apps" / "cache_api" / "Dockerfile.dockerignore"  # BuildKit's per-Dockerfile file
    ignore.write_text(ignore.read_text() + "apps/cache_api/dataset\n")
    with pytest.raises(ImageError, match=rf"^image {re.escape(versions.CACHE_API_IMAGE)} .*COPY apps/cache_api/dataset"
                                         r" /app/dataset: .*excluded by \.dockerignore"):
        build_image(versions.CACHE_API_IMAGE, ctx / "apps" / "cache_api" / "Dockerfile", ctx, tmp_path / "root")


@pytest.mark.parametrize("base", [
    "python:3.12-slim",                                    # another Python, by tag
    "python:3.12-slim@sha256:" + "a" * 64,                 # another Python, pinned
    "python:3.11@sha256:" + "a" * 64,                      # another variant of 3.11
    "python:3.11-slim@sha256:3c1dfceb",                    # not a digest
    "python:3.11-slim@sha512:" + "a" * 128,                # not a sha256 digest
], ids=["tag", "pinned-3.12", "not-slim", "short-digest", "sha512"])
def test_other_base_image_fails_naming_the_image(tmp_path, base):
    ctx = context_copy(tmp_path)
    dockerfile = ctx / "apps" / "worker" / "Dockerfile"
    text = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.11-slim@sha256:[0-9a-f]{64}$", text, re.M)  # what the checkout has
    dockerfile.write_text(re.sub(r"^FROM .*$", f"FROM {base}", text, count=1, flags=re.M))
    with pytest.raises(ImageError, match=rf"^image {re.escape(versions.WORKER_IMAGE)} .*base image is {re.escape(base)},"):
        build_image(versions.WORKER_IMAGE, dockerfile, ctx, tmp_path / "root")


def test_root_user_fails_naming_the_image(tmp_path):
    ctx = context_copy(tmp_path)
    dockerfile = ctx / "apps" / "cache_api" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 10001:10001\n", ""))
    with pytest.raises(ImageError, match=rf"^image {re.escape(versions.CACHE_API_IMAGE)} .*runs as root"):
        build_image(versions.CACHE_API_IMAGE, dockerfile, ctx, tmp_path / "root")


def test_probe_naming_a_module_the_image_lacks_fails_naming_the_image(images, redis_server):
    worker = images[versions.WORKER_IMAGE]
    container = {
        "name": "worker", "image": versions.WORKER_IMAGE,
        "env": [{"name": "REDIS_HOST", "value": "redis"}, {"name": "REDIS_PORT", "value": "6379"},
                {"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "password"}}}],
        "readinessProbe": {"exec": {"command": ["python", "-m", "apps.producer.healthcheck"]}, "timeoutSeconds": 10},
    }
    run = pods.ContainerRun(versions.WORKER_IMAGE, ("test Deployment/worker containers/worker",), container, "platform")
    with pytest.raises(ImageError) as failed:
        pods.run_container(run, worker, redis_server)
    message = str(failed.value)
    assert message.startswith(f"image {versions.WORKER_IMAGE} ")
    assert "No module named 'apps.producer'" in message
