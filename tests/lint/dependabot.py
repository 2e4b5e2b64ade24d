"""Which files .github/dependabot.yml keeps current, modelled on what Dependabot reads, against the
dependency manifests the tree holds.

What each ecosystem reads in a configured directory (dependabot-core's file fetchers):
- ``github-actions`` at ``/``: ``.github/workflows/*.yml|yaml`` and a root ``action.yml|yaml``;
  elsewhere, that directory's ``action.yml|yaml``;
- ``pip``: the directory's ``*.txt``/``*.in`` files named like requirements, ``pyproject.toml``,
  ``setup.py``, ``setup.cfg``, ``Pipfile``, and every file their ``-r``/``-c`` lines include,
  followed from file to file (paths relative to the including file);
- ``docker``: the directory's ``Dockerfile``, ``Dockerfile.<x>`` and ``<x>.Dockerfile``.
``directories`` may hold globs (``*`` within a path segment, ``**`` across segments).

The manifests come from the tree (tests/lint/inventory.py), not from a list: the three kinds
above, the image locks (``requirements.lock``: made by ``make lock`` from the
``requirements.txt`` beside it, so covered when that file is), and any other ecosystem's
manifest (package.json, go.mod, Chart.yaml, ...) so that one added later is not missed.
Vendored upstream files (``schemas/``: copies kept unchanged, their versions pinned in
components/versions.py) are not ours to bump.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.lint import inventory

#: Copied as released, never upgraded in place (schemas; the Helm charts, whose versions are
#: components/versions.py's pins, re-vendored with tools/vendor_charts.py: tests/infra/test_charts.py).
VENDORED = ("schemas/", "charts/")
PIP_MANIFESTS = {"pyproject.toml", "setup.py", "setup.cfg", "Pipfile"}
#: Manifests of ecosystems this repository does not use today, by file name (or suffix).
OTHER_ECOSYSTEMS = {
    "package.json": "npm", "go.mod": "gomod", "Cargo.toml": "cargo", "Gemfile": "bundler",
    "composer.json": "composer", "pom.xml": "maven", "build.gradle": "gradle", "build.gradle.kts": "gradle",
    "Chart.yaml": "helm", "mix.exs": "mix", "pubspec.yaml": "pub", "Package.swift": "swift",
    "global.json": "dotnet-sdk", ".gitmodules": "gitsubmodule", "devcontainer.json": "devcontainers",
    "docker-compose.yml": "docker-compose", "docker-compose.yaml": "docker-compose", "compose.yaml": "docker-compose",
    ".pre-commit-config.yaml": "pre-commit", ".tf": "terraform", ".csproj": "nuget",
}
_INCLUDE = re.compile(r"^\s*-[rc]\s*(\S+\.(?:txt|in))\s*$", re.M)


@dataclass(frozen=True)
class Manifest:
    path: str
    ecosystem: str
    derived_from: str | None = None
    """For a lock: the file it is generated from (covered when that one is)."""


def manifests(root: Path) -> list[Manifest]:
    found = []
    files = [f for f in inventory.repo_files(root) if not f.startswith(VENDORED)]
    dockerfiles = set(inventory.dockerfiles(root))
    for name in files:
        base = posixpath.basename(name)
        if name in dockerfiles:
            found.append(Manifest(name, "docker"))
        elif re.fullmatch(r"\.github/workflows/[^/]+\.ya?ml", name) or base in ("action.yml", "action.yaml"):
            found.append(Manifest(name, "github-actions"))
        elif is_pip_requirements(base) or base in PIP_MANIFESTS:
            found.append(Manifest(name, "pip"))
        elif base == "requirements.lock":
            found.append(Manifest(name, "pip", derived_from=posixpath.join(posixpath.dirname(name), "requirements.txt")))
        else:
            ecosystem = OTHER_ECOSYSTEMS.get(base) or OTHER_ECOSYSTEMS.get(posixpath.splitext(base)[1])
            if ecosystem:
                found.append(Manifest(name, ecosystem))
    return found


def is_pip_requirements(base: str) -> bool:
    return base.endswith((".txt", ".in")) and "requirements" in base


def _dir_regex(pattern: str) -> re.Pattern:
    parts = []
    for token in re.split(r"(\*\*|\*)", pattern.strip("/")):
        parts.append(".*" if token == "**" else "[^/]*" if token == "*" else re.escape(token))
    return re.compile("^" + "".join(parts) + "$")


def matching_dirs(root: Path, patterns: list[str]) -> set[str]:
    """The tree's directories (``""`` for the root) that ``directory``/``directories`` name."""
    dirs = {""} | {posixpath.dirname(f) for f in inventory.repo_files(root)}
    dirs |= {d.rsplit("/", n)[0] for d in list(dirs) for n in range(1, d.count("/") + 1)}
    return {d for d in dirs for p in patterns if _dir_regex(p).match(d)}


def reads(root: Path, ecosystem: str, directory: str) -> set[str]:
    """The files Dependabot reads for ``ecosystem`` in ``directory`` (relative, ``""`` = root)."""
    files = inventory.repo_files(root)
    here = [f for f in files if posixpath.dirname(f) == directory]
    if ecosystem == "github-actions":
        found = {f for f in here if posixpath.basename(f) in ("action.yml", "action.yaml")}
        if directory == "":
            found |= {f for f in files if re.fullmatch(r"\.github/workflows/[^/]+\.ya?ml", f)}
        return found
    if ecosystem == "docker":
        return set(here) & set(inventory.dockerfiles(root))
    if ecosystem == "gomod":
        return {f for f in here if posixpath.basename(f) == "go.mod"}
    if ecosystem == "npm":
        return {f for f in here if posixpath.basename(f) in ("package.json", "package-lock.json")}
    if ecosystem == "pip":
        found = {f for f in here if is_pip_requirements(posixpath.basename(f)) or posixpath.basename(f) in PIP_MANIFESTS}
        todo = [f for f in found if f.endswith((".txt", ".in"))]
        while todo:
            current = todo.pop()
            for include in _INCLUDE.findall((root / current).read_text()):
                child = posixpath.normpath(posixpath.join(posixpath.dirname(current), include))
                if child not in found and (root / child).is_file():
                    found.add(child)
                    todo.append(child)
        return found
    return set()


def entries(config: dict) -> list[tuple[str, list[str]]]:
    return [(u["package-ecosystem"], u.get("directories") or [u["directory"]]) for u in config.get("updates", [])]


def coverage_problems(root: Path, config: dict) -> list[str]:
    """Every manifest no entry reads, and every configured directory that holds nothing to read."""
    covered: dict[str, set[str]] = {}
    problems = []
    for ecosystem, patterns in entries(config):
        for pattern in patterns:  # Dependabot fails a job for a listed directory without manifests
            read = set().union(*(reads(root, ecosystem, d) for d in matching_dirs(root, [pattern])))
            if not read:
                problems.append(f"the {ecosystem} entry's directory {pattern} holds no {ecosystem} manifest")
            covered.setdefault(ecosystem, set()).update(read)
    for m in manifests(root):
        seen = covered.get(m.ecosystem, set())
        if m.derived_from:
            if m.derived_from not in seen:
                problems.append(f"{m.path}: generated from {m.derived_from}, which no {m.ecosystem} entry reads")
        elif m.path not in seen:
            problems.append(f"{m.path}: a {m.ecosystem} manifest no entry of .github/dependabot.yml reads")
    return problems


def grouping_problems(config: dict) -> list[str]:
    """Each entry must put every update in one group: `patterns: ["*"]` (one PR per ecosystem) or
    `group-by: dependency-name` (one PR per dependency across the entry's directories)."""
    problems = []
    for update in config.get("updates", []):
        name = f"the {update['package-ecosystem']} entry"
        groups = update.get("groups") or {}
        catch_all = [g for g, spec in groups.items() if not spec.get("exclude-patterns") and not spec.get("update-types")
                     and ("*" in (spec.get("patterns") or []) or spec.get("group-by") == "dependency-name")]
        if not catch_all:
            problems.append(f"{name} has no group taking every update (patterns: ['*'] or group-by: dependency-name)")
        for g, spec in groups.items():
            if spec.get("group-by") and len(update.get("directories") or []) < 2:
                problems.append(f"{name}: group {g} uses group-by, which needs `directories` (two or more)")
        if (update.get("cooldown") or {}).get("default-days", 0) < 7:
            problems.append(f"{name} has no cooldown of at least 7 days")
    return problems


def load(root: Path) -> dict:
    return yaml.safe_load((root / ".github" / "dependabot.yml").read_text())
