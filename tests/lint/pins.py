"""The repository's own pinning rules for CI and images, beyond what zizmor and hadolint check.

- every action is pinned by a full commit SHA with its exact version in a comment
  (``uses: owner/repo@<40 hex> # v1.2.3``), and CONTRIBUTING.md's "CI" table lists that same version and
  commit (the table says how each was verified);
- checkout never keeps the token (``persist-credentials: false``); the workflow grants nothing by
  default and each job declares what it gets, never ``write``;
- every container image a workflow or script pulls, and every ``FROM``, is ``name:tag@sha256:<64
  hex>``: the tag says what it is, the digest makes it one build.

Each check returns its problems as sentences naming file and place, so a test of the test can
feed it a broken copy.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

#: ``uses: owner/repo[/path]@<sha> # v1.2.3`` (Dependabot keeps the comment in step with the SHA).
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?:\s+#\s*(?P<comment>.*))?$")
PINNED_ACTION = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)(?:/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")
VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
PINNED_IMAGE = re.compile(r"^(?P<name>[\w.\-/:]+?):(?P<tag>[\w.\-]+)@sha256:[0-9a-f]{64}$")
LISTED_ACTION_ROW = re.compile(r"^\| `(?P<action>[\w.-]+/[\w.-]+)` \| `(?P<version>v[\d.]+)` \| `(?P<sha>[0-9a-f]{40})` \|",
                               re.M)


def action_pins(name: str, text: str) -> tuple[list[tuple[str, str, str]], list[str]]:
    """The ``(action, version, sha)`` pins of a workflow's text, and the problems with its ``uses:``."""
    pins, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        match = USES.match(line)
        if not match or match["ref"].startswith("./"):
            continue  # local actions come with the checkout
        ref, comment = match["ref"].strip("'\""), (match["comment"] or "").strip()
        pinned = PINNED_ACTION.match(ref)
        if ref.startswith("docker://"):
            if not PINNED_IMAGE.match(ref.removeprefix("docker://")):
                problems.append(f"{name}:{number}: {ref} is not pinned by digest (name:tag@sha256:...)")
        elif not pinned:
            problems.append(f"{name}:{number}: {ref} is not pinned by a full commit SHA")
        elif not VERSION.match(comment):
            problems.append(f"{name}:{number}: {ref} has no `# vX.Y.Z` comment naming the version its SHA is")
        else:
            pins.append((pinned["action"], comment, pinned["sha"]))
    return pins, problems


def listed_action_pins(doc: str) -> set[tuple[str, str, str]]:
    """The ``(action, version, sha)`` rows of a doc's table of pinned actions."""
    return {(m["action"], m["version"], m["sha"]) for m in LISTED_ACTION_ROW.finditer(doc)}


def permission_problems(name: str, doc: dict) -> list[str]:
    problems = []
    if doc.get("permissions") != {}:
        problems.append(f"{name}: top-level `permissions` must be `{{}}` (each job asks for what it uses), "
                        f"not {doc.get('permissions')!r}")
    for job_id, job in (doc.get("jobs") or {}).items():
        granted = job.get("permissions")
        if not isinstance(granted, dict):
            problems.append(f"{name}: job {job_id} declares no `permissions:` mapping")
            continue
        writes = sorted(scope for scope, level in granted.items() if level == "write")
        if writes:
            problems.append(f"{name}: job {job_id} gets write access to {writes}")
    return problems


def checkout_problems(name: str, doc: dict) -> list[str]:
    problems = []
    for job_id, job in (doc.get("jobs") or {}).items():
        for index, step in enumerate(job.get("steps") or []):
            if str(step.get("uses", "")).startswith("actions/checkout@") and \
                    (step.get("with") or {}).get("persist-credentials") is not False:
                problems.append(f"{name}: job {job_id}, step {index}: checkout keeps the token in .git "
                                f"(set `persist-credentials: false`)")
    return problems


def workflow_images(doc: dict) -> list[tuple[str, str]]:
    """``(where, image)`` for every job container and service container of a workflow."""
    images = []
    for job_id, job in (doc.get("jobs") or {}).items():
        container = job.get("container")
        if container:
            images.append((f"job {job_id} container", container if isinstance(container, str) else container["image"]))
        for service_id, service in (job.get("services") or {}).items():
            images.append((f"job {job_id} service {service_id}", service["image"]))
    return images


def image_problems(where: str, image: str) -> list[str]:
    return [] if PINNED_IMAGE.match(image) else [f"{where}: {image} is not pinned by digest (name:tag@sha256:<64 hex>)"]


def dockerfile_bases(path: Path) -> list[str]:
    """Every ``FROM`` image of a Dockerfile (flags and ``AS name`` left out)."""
    bases = []
    for line in path.read_text().splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            bases.append(next(w for w in words[1:] if not w.startswith("--")))
    return bases


def workflow(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text()) or {}
    doc.pop(True, None)  # YAML 1.1 reads the `on:` key as True; it holds no pins
    return doc
