"""The docs are true for someone who has only the repository: every file path, test name, make
target and ``python -m`` module that README.md, CONTRIBUTING.md, docs/, the Makefile, Pulumi.yaml
and the stack files cite exists, and nothing points outside the repository (``../shared``). The
README stays the user's path in: at most ``README_MAX_LINES`` lines (the rest lives in docs/ and
CONTRIBUTING.md)."""

from __future__ import annotations

import ast
import importlib.util
import io
import re
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").glob("*.md"))]
# Files whose comments cite paths too.
CITING = DOCS + [REPO / "Makefile", REPO / "Pulumi.yaml", *sorted((REPO / "stacks").glob("*.yaml")),
                 *sorted((REPO / "scripts").glob("*.sh")), REPO / ".ci" / "run"]
#: Code whose comments and docstrings cite files: every Python file of the tree.
CODE = sorted(p for top in ("apps", "components", "tools", "tests", "bench", "e2e", "policy", "provider")
              for p in (REPO / top).rglob("*.py") if "venv" not in p.parts)

TOP = r"(?:apps|components|tests|docs|scripts|tools|bench|stacks|schemas|deploy|monitoring|provider|policy|examples|\.github|\.ci)"
PATH = re.compile(rf"(?<![\w./-])({TOP}/[\w./-]*[\w/])")
ROOT_FILES = re.compile(r"(?<![\w./-])(Makefile|Pulumi\.yaml|__main__\.py|requirements[\w-]*\.txt|"
                        r"pytest\.ini|\.dockerignore|[A-Z]+\.md)(?![\w.-])")
LINK = re.compile(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)")
TEST_NAME = re.compile(r"(?<![\w.])(test_\w+)(?![\w.])")
# In code: a backticked `make x`, or a code line that starts with it.
MAKE_TARGET = re.compile(r"(?:`|^\s*)make ([a-z][a-z0-9-]*)", re.M)
MODULE = re.compile(r"python -m ((?:apps|tools|bench|tests)(?:\.\w+)+)")
K8S_REF = re.compile(r"\b(Deployment|StatefulSet|DaemonSet|Job|Service|RoleBinding|ServiceMonitor|PodMonitor) $")
#: The README is the way in: what it is, set-up, a quickstart per target, the make targets, a map
#: of the docs. Anything longer belongs in docs/ (or CONTRIBUTING.md).
README_MAX_LINES = 300
#: Paths a command creates (rendered output, the e2e stack file, caches): cited, not committed.
GENERATED = ("out/", "stacks/Pulumi.e2e.yaml", "policy/venv", "provider/venv")


def prose(path: Path) -> str:
    """What a file says to a reader: a Python file's comments and docstrings (its strings are
    data: test fixtures, API groups), any other file whole."""
    text = path.read_text()
    if path.suffix != ".py":
        return text
    parts = [tok.string for tok in tokenize.generate_tokens(io.StringIO(text).readline)
             if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                parts.append(doc)
    return "\n".join(parts)


def _cited(pattern: re.Pattern, files=CITING) -> list[tuple[str, str]]:
    found = []
    for f in files:
        text = prose(f)
        for m in pattern.finditer(text):
            line = text[text.rfind("\n", 0, m.start()) + 1:text.find("\n", m.end())]
            if m.group(1) == "apps/v1":
                continue  # the Kubernetes API group
            if "kubectl" in line and m.group(1).startswith("deploy/"):
                continue  # a kubectl object (deploy/worker), not the deploy/ folder
            if K8S_REF.search(text[max(0, m.start() - 40):m.start()]):
                continue  # a Kubernetes object `Kind namespace/name` (a Deployment in the monitoring namespace)
            found.append((f.relative_to(REPO).as_posix(), m.group(1)))
    return found


def _placeholder(path: str) -> bool:
    return (any(c in path for c in "<>*{}$") or re.search(r"/[A-Z]{3,}(/|$)", path) is not None
            or path == "stacks/Pulumi")  # stacks/Pulumi.<stack>.yaml, cut at the placeholder


def test_every_cited_path_exists():
    missing = []
    for where, path in _cited(PATH, CITING + CODE) + _cited(ROOT_FILES, CITING + CODE):
        path = path.rstrip(".")
        if _placeholder(path) or path.startswith(GENERATED):
            continue
        if not (REPO / path).exists():
            missing.append(f"{where}: {path}")
    assert not missing, "cited but not in the repository:\n" + "\n".join(sorted(set(missing)))


def anchors(doc: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces
    to hyphens, ``-1``, ``-2`` ... for repeats."""
    seen: dict[str, int] = {}
    out = set()
    in_code = False
    for line in doc.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).replace("`", "").lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_every_markdown_link_and_anchor_resolves():
    missing = []
    for doc in DOCS:
        for m in LINK.finditer(doc.read_text()):
            target, anchor = m.group(1), m.group(2)
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            path = (doc.parent / target).resolve() if target else doc
            if not path.exists():
                missing.append(f"{doc.relative_to(REPO)}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                missing.append(f"{doc.relative_to(REPO)}: {target}#{anchor} (no such heading)")
    assert not missing, "\n".join(missing)


def test_the_anchor_reader_follows_github():
    assert anchors(REPO / "docs" / "worker.md") >= {"connections-that-vanish-silently"}


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


def test_the_readme_stays_short():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, more than {README_MAX_LINES}: move the detail to docs/ "
        "(a line in the README's map of the docs) or CONTRIBUTING.md")
