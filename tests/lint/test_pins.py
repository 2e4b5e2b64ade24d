"""Actions pinned by commit SHA on the versions CONTRIBUTING.md lists, least privilege, no persisted token,
and every image pinned by digest; each rule fails on a seeded breach."""

from __future__ import annotations

import re

import pytest

from components import versions
from tests.lint import inventory, pins

REPO = inventory.REPO
WORKFLOW = ".github/workflows/ci.yml"
CONTRIBUTING = (REPO / "CONTRIBUTING.md").read_text()


def smoke_redis_image() -> str:
    return re.search(r"^REDIS_IMAGE=(\S+)$", (REPO / "scripts" / "images_smoke.sh").read_text(), re.M)[1]


def test_every_action_is_pinned_by_commit_sha_to_the_version_contributing_lists():
    listed = pins.listed_action_pins(CONTRIBUTING)
    assert listed, 'CONTRIBUTING.md "CI" has no table of pinned actions'
    used = set()
    for name in inventory.workflows():
        found, problems = pins.action_pins(name, (REPO / name).read_text())
        assert not problems, "\n".join(problems)
        used |= set(found)
    assert used, "no action found: is the workflow still there?"
    assert used <= listed, f'pinned in the workflows but not listed in CONTRIBUTING.md "CI": {sorted(used - listed)}'
    assert listed <= used, f'listed in CONTRIBUTING.md "CI" but used by no workflow: {sorted(listed - used)}'


def test_every_job_gets_only_read_access_and_no_checkout_keeps_the_token():
    for name in inventory.workflows():
        doc = pins.workflow(REPO / name)
        problems = pins.permission_problems(name, doc) + pins.checkout_problems(name, doc)
        assert not problems, "\n".join(problems)


def test_every_image_ci_and_the_dockerfiles_pull_is_pinned_by_digest():
    problems = []
    for name in inventory.workflows():
        for where, image in pins.workflow_images(pins.workflow(REPO / name)):
            problems += pins.image_problems(f"{name}: {where}", image)
    bases = {name: pins.dockerfile_bases(REPO / name) for name in inventory.dockerfiles()}
    for name, images in bases.items():
        for image in images:
            problems += pins.image_problems(f"{name}: FROM", image)
    problems += pins.image_problems("scripts/images_smoke.sh: REDIS_IMAGE", smoke_redis_image())
    assert not problems, "\n".join(problems)
    # One base image for every Dockerfile: a bump is one change, and the locks target it.
    assert len({image for images in bases.values() for image in images}) == 1, bases


def test_the_smoke_redis_is_the_stacks_redis_in_ci_and_by_hand():
    """The CI service container, the smoke script's own container and the in-cluster Redis of the
    stack are one Redis version; the first two are one build."""
    services = [image for where, image in pins.workflow_images(pins.workflow(REPO / WORKFLOW)) if "service redis" in where]
    assert services == [smoke_redis_image()]
    assert smoke_redis_image().split("@")[0] == versions.REDIS_IMAGE


def test_the_pulumi_cli_in_ci_is_the_sdks_version():
    sdk = re.search(r"^pulumi==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)[1]
    steps = [s for job in pins.workflow(REPO / WORKFLOW)["jobs"].values() for s in job["steps"]
             if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert steps and all(str(s["with"]["pulumi-version"]) == sdk for s in steps), (sdk, steps)


# --- tests of the tests: each rule on a broken copy -------------------------------------------
@pytest.mark.parametrize("line, says", [
    ("      - uses: actions/checkout@v7", "not pinned by a full commit SHA"),
    ("      - uses: actions/checkout@3d3c42e5", "not pinned by a full commit SHA"),
    ("      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1", "no `# vX.Y.Z` comment"),
    ("      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7", "no `# vX.Y.Z` comment"),
    ("        uses: docker://alpine:3.20", "not pinned by digest"),
])
def test_an_unpinned_action_is_named(line, says):
    pinned, problems = pins.action_pins("wf.yml", f"jobs:\n  a:\n    steps:\n{line}\n")
    assert not pinned and len(problems) == 1 and problems[0].startswith("wf.yml:4: ") and says in problems[0]


def test_a_pin_contributing_does_not_list_is_found():
    text = (REPO / WORKFLOW).read_text().replace(
        "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1",
        "actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5.0.0", 1)
    used, problems = pins.action_pins(WORKFLOW, text)
    assert not problems
    assert set(used) - pins.listed_action_pins(CONTRIBUTING) == {
        ("actions/checkout", "v5.0.0", "08c6903cd8c0fde910a37f88322edcfb5dd907a8")}


def test_broad_permissions_and_a_kept_token_are_named():
    doc = pins.workflow(REPO / WORKFLOW)
    doc["permissions"] = {"contents": "read"}
    doc["jobs"]["images"]["permissions"] = {"contents": "write", "packages": "write"}
    del doc["jobs"]["test"]["permissions"]
    del doc["jobs"]["e2e-kind"]["steps"][0]["with"]["persist-credentials"]
    assert pins.permission_problems("wf", doc) == [
        "wf: top-level `permissions` must be `{}` (each job asks for what it uses), not {'contents': 'read'}",
        "wf: job test declares no `permissions:` mapping",
        "wf: job images gets write access to ['contents', 'packages']",
    ]
    assert pins.checkout_problems("wf", doc) == [
        "wf: job e2e-kind, step 0: checkout keeps the token in .git (set `persist-credentials: false`)"]


@pytest.mark.parametrize("image", ["redis:7.4.2", "redis@sha256:" + "a" * 64, "redis:7.4.2@sha256:abc", "redis"])
def test_an_image_not_pinned_by_tag_and_digest_is_named(image):
    assert pins.image_problems("here", image) == [f"here: {image} is not pinned by digest (name:tag@sha256:<64 hex>)"]


def test_dockerfile_bases_are_read_past_flags_and_stage_names(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("# syntax=docker/dockerfile:1\nFROM --platform=linux/amd64 python:3.11 AS build\nRUN true\n"
                    "from scratch\n")
    assert pins.dockerfile_bases(path) == ["python:3.11", "scratch"]
