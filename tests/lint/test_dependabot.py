"""Dependabot covers every dependency manifest of the tree and groups each ecosystem's bumps
the coverage is derived from the tree (tests/lint/dependabot.py), and each way it
could go stale fails in a test of the test."""

from __future__ import annotations

import copy
import shutil
import subprocess

import pytest

from tests.lint import dependabot, inventory

REPO = inventory.REPO
CONFIG = dependabot.load(REPO)


def test_every_manifest_is_covered_and_every_entry_reads_one():
    found = dependabot.manifests(REPO)
    assert {m.ecosystem for m in found} == {"pip", "docker", "github-actions", "npm", "gomod"}, found
    problems = dependabot.coverage_problems(REPO, CONFIG)
    assert not problems, "\n".join(problems)


def test_each_ecosystem_arrives_grouped_after_a_cooldown():
    problems = dependabot.grouping_problems(CONFIG)
    assert not problems, "\n".join(problems)


def test_the_base_image_only_moves_within_python_3_11():
    """The locks and the image tests target python:3.11-slim: Dependabot may bump its digest, never
    its minor (tests/apps/images/image.py refuses another base)."""
    docker = next(u for u in CONFIG["updates"] if u["package-ecosystem"] == "docker")
    ignored = {i["dependency-name"]: set(i["update-types"]) for i in docker["ignore"]}
    assert ignored["python"] >= {"version-update:semver-major", "version-update:semver-minor"}


# --- tests of the test: a tree that has outgrown the config -------------------------------------
@pytest.fixture
def tree(tmp_path):
    """A git tree holding copies of every manifest (and dependabot.yml)."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    for m in dependabot.manifests(REPO):
        (tmp_path / m.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / m.path, tmp_path / m.path)
    (tmp_path / ".github").mkdir(exist_ok=True)
    shutil.copy2(REPO / ".github" / "dependabot.yml", tmp_path / ".github" / "dependabot.yml")
    assert not dependabot.coverage_problems(tmp_path, CONFIG)  # the copy starts covered
    return tmp_path


def test_a_new_image_is_named_until_dependabot_covers_it(tree):
    (tree / "apps" / "notifier").mkdir()
    (tree / "apps" / "notifier" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (tree / "apps" / "notifier" / "requirements.txt").write_text("httpx==0.28.1\n")
    (tree / "apps" / "notifier" / "requirements.lock").write_text("httpx==0.28.1\n")
    assert dependabot.coverage_problems(tree, CONFIG) == [
        "apps/notifier/Dockerfile: a docker manifest no entry of .github/dependabot.yml reads",
        "apps/notifier/requirements.lock: generated from apps/notifier/requirements.txt, which no pip entry reads",
        "apps/notifier/requirements.txt: a pip manifest no entry of .github/dependabot.yml reads",
    ]
    # Covered once the Dockerfile's directory is listed and requirements-dev.txt includes the file.
    config = copy.deepcopy(CONFIG)
    next(u for u in config["updates"] if u["package-ecosystem"] == "docker")["directories"].append("/apps/notifier")
    with (tree / "requirements-dev.txt").open("a") as dev:
        dev.write("-r apps/notifier/requirements.txt\n")
    assert dependabot.coverage_problems(tree, config) == []


def test_requirements_reached_only_through_dev_requirements_are_named_when_dropped(tree):
    dev = tree / "requirements-dev.txt"
    dev.write_text(dev.read_text().replace("-r apps/worker/requirements.txt\n", ""))
    assert dependabot.coverage_problems(tree, CONFIG) == [
        "apps/worker/requirements.lock: generated from apps/worker/requirements.txt, which no pip entry reads",
        "apps/worker/requirements.txt: a pip manifest no entry of .github/dependabot.yml reads",
    ]


def test_another_ecosystem_is_named_unless_vendored(tree):
    (tree / "docs" / "site").mkdir(parents=True)
    (tree / "docs" / "site" / "package.json").write_text("{}\n")
    (tree / "schemas" / "chart").mkdir(parents=True)
    (tree / "schemas" / "chart" / "Chart.yaml").write_text("name: vendored\n")  # an upstream copy: not ours
    assert dependabot.coverage_problems(tree, CONFIG) == [
        "docs/site/package.json: a npm manifest no entry of .github/dependabot.yml reads"]


def test_an_entry_for_a_directory_without_manifests_is_named(tree):
    config = copy.deepcopy(CONFIG)
    next(u for u in config["updates"] if u["package-ecosystem"] == "docker")["directories"].append("/apps/common")
    config["updates"].append({"package-ecosystem": "pip", "directory": "/deploy"})
    assert dependabot.coverage_problems(tree, config) == [
        "the docker entry's directory /apps/common holds no docker manifest",
        "the pip entry's directory /deploy holds no pip manifest",
    ]


@pytest.mark.parametrize("break_it, says", [
    (lambda c: c["updates"][0].pop("groups"), "the github-actions entry has no group taking every update"),
    (lambda c: c["updates"][1]["groups"]["python"].update({"exclude-patterns": ["pulumi*"]}),
     "the pip entry has no group taking every update"),
    (lambda c: c["updates"][2].update({"directory": "/apps/worker", "directories": None}),
     "the docker entry: group base-image uses group-by, which needs `directories` (two or more)"),
    (lambda c: c["updates"][2].pop("cooldown"), "the docker entry has no cooldown of at least 7 days"),
], ids=["ungrouped", "group-misses-some", "group-by-one-directory", "no-cooldown"])
def test_ungrouped_or_hasty_updates_are_named(break_it, says):
    config = copy.deepcopy(CONFIG)
    break_it(config)
    problems = dependabot.grouping_problems(config)
    assert len(problems) == 1 and problems[0].startswith(says), problems


def test_directory_globs_match_as_dependabot_documents(tree):
    assert dependabot.matching_dirs(tree, ["/apps/*"]) == {"apps/cache_api", "apps/producer", "apps/worker"}
    assert dependabot.matching_dirs(tree, ["/"]) == {""}
    assert {"apps/worker", ".github"} <= dependabot.matching_dirs(tree, ["/**"])
