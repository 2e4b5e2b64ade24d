"""No import circle between the project's modules, function-local imports included: a
circle hidden by an import inside a function is still one (it only moves the failure to run
time, and the two modules cannot be understood apart)."""

from __future__ import annotations

from tests.lint.imports import cycles, graph
from tests.lint.inventory import REPO


def test_the_project_has_no_import_circle():
    found = cycles(graph(REPO))
    assert not found, "import circles (move what both need into a module of its own):\n  " + "\n  ".join(
        " <-> ".join(group) for group in found)


def test_a_seeded_circle_is_found(tmp_path):
    pkg = tmp_path / "tools"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from tools.b import thing\n")
    (pkg / "b.py").write_text("def thing():\n    from tools import a\n    return a\n")
    (pkg / "c.py").write_text("import tools.a\n")
    assert cycles(graph(tmp_path)) == [["tools.a", "tools.b"]]
