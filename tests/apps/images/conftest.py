"""Fixtures: each image's environment, built once per session (its venv cached across
sessions by lock hash, see venvs.py). A build failure is raised in every test that asks for
that image, naming it, and does not hide the other images."""

from __future__ import annotations

from pathlib import Path

import pytest

from components import versions
from tests.apps.images.catalog import REPO, dockerfiles_by_image
from tests.apps.images.image import Image, ImageError, build_image


class Images:
    """Builds an image's environment the first time a test asks for it."""

    def __init__(self, base: Path):
        self.base = base
        self.dockerfiles = dockerfiles_by_image()
        self._built: dict[str, Image | ImageError] = {}

    def __getitem__(self, ref: str) -> Image:
        if ref not in self._built:
            root = self.base / ref.split("/")[-1].replace(":", "-") / "root"
            try:
                self._built[ref] = build_image(ref, self.dockerfiles[ref], REPO, root)
            except ImageError as exc:
                self._built[ref] = exc
        built = self._built[ref]
        if isinstance(built, ImageError):
            raise built
        return built


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    return Images(tmp_path_factory.mktemp("images"))


@pytest.fixture
def worker_image(images: Images) -> Image:
    return images[versions.WORKER_IMAGE]


@pytest.fixture
def producer_image(images: Images) -> Image:
    return images[versions.PRODUCER_IMAGE]


@pytest.fixture
def cache_api_image(images: Images) -> Image:
    return images[versions.CACHE_API_IMAGE]
