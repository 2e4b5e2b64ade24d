"""The docs are true for someone who has only the repository: every file path, test name, make
target and ``python -m`` module that README.md, docs/, the Makefile, Pulumi.yaml and the stack
files cite exists, and nothing points outside the repository (``../shared``)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Files whose comments cite paths too.
CITING = DOCS + [REPO / "Makefile", REPO / "Pulumi.yaml", *sorted((REPO / "stacks").glob("*.yaml")),
                 *sorted((REPO / "scripts").glob("*.sh")), REPO / ".ci" / "run"]

TOP = r"(?:apps|components|tests|docs|scripts|tools|bench|stacks|schemas|deploy|monitoring|provider|policy|examples|\.github|\.ci)"
PATH = re.compile(rf"(?<![\w./-])({TOP}/[\w./-]*[\w/])")
ROOT_FILES = re.compile(r"(?<![\w./-])(Makefile|Pulumi\.yaml|__main__\.py|requirements[\w-]*\.txt|"
                        r"pytest\.ini|\.dockerignore)(?![\w.-])")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
TEST_NAME = re.compile(r"(?<![\w.])(test_\w+)(?![\w.])")
# In code: a backticked `make x`, or a code line that starts with it.
MAKE_TARGET = re.compile(r"(?:`|^\s*)make ([a-z][a-z0-9-]*)", re.M)
MODULE = re.compile(r"python -m ((?:apps|tools|bench|tests)(?:\.\w+)+)")
K8S_REF = re.compile(r"\b(Deployment|StatefulSet|DaemonSet|Job|Service|RoleBinding|ServiceMonitor|PodMonitor) $")
#: Paths a command creates (rendered output, the e2e stack file, caches): cited, not committed.
GENERATED = ("out/", "stacks/Pulumi.e2e.yaml", "policy/venv", "provider/venv")


def _cited(pattern: re.Pattern, files=CITING) -> list[tuple[str, str]]:
    found = []
    for f in files:
        text = f.read_text()
        for m in pattern.finditer(text):
            line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())]
            if "kubectl" in line and m.group(1).startswith("deploy/"):
                continue  # a kubectl object (deploy/worker), not the deploy/ folder
            if K8S_REF.search(text[max(0, m.start() - 40):m.start()]):
                continue  # a Kubernetes object `Kind namespace/name` (monitoring/monitoring-grafana)
            found.append((f.relative_to(REPO).as_posix(), m.group(1)))
    return found


def _placeholder(path: str) -> bool:
    return any(c in path for c in "<>*{}$") or re.search(r"/[A-Z]{3,}(/|$)", path) is not None


def test_every_cited_path_exists():
    missing = []
    for where, path in _cited(PATH) + _cited(ROOT_FILES):
        path = path.rstrip(".")
        if _placeholder(path) or path.startswith(GENERATED):
            continue
        if not (REPO / path).exists():
            missing.append(f"{where}: {path}")
    assert not missing, "cited but not in the repository:\n" + "\n".join(sorted(set(missing)))


def test_every_markdown_link_resolves():
    missing = []
    for doc in DOCS:
        for m in LINK.finditer(doc.read_text()):
            target = m.group(1)
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            if not (doc.parent / target).resolve().exists():
                missing.append(f"{doc.relative_to(REPO)}: {target}")
    assert not missing, "\n".join(missing)


def test_every_cited_test_exists():
    defined = set()
    for f in (REPO / "tests").rglob("*.py"):
        defined |= set(re.findall(r"^\s*(?:async )?def (test_\w+)", f.read_text(), re.M))
        defined.add(f.stem)  # a test module cited by name (test_checkov, ...)
    missing = sorted({f"{where}: {name}" for where, name in _cited(TEST_NAME, DOCS) if name not in defined})
    assert not missing, "\n".join(missing)


def test_every_cited_make_target_exists():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.M))
    missing = sorted({f"{where}: make {t}" for where, t in _cited(MAKE_TARGET) if t not in targets})
    assert not missing, "\n".join(missing)


def test_every_cited_module_exists():
    missing = sorted({f"{where}: python -m {mod}" for where, mod in _cited(MODULE)
                      if importlib.util.find_spec(mod) is None})
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("doc", CITING, ids=lambda p: p.relative_to(REPO).as_posix())
def test_nothing_points_outside_the_repository(doc):
    assert "../shared" not in doc.read_text(), f"{doc.relative_to(REPO)} points at ../shared"
