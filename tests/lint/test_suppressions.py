"""A linter finding is fixed, or suppressed with its reason written beside it: every inline
``# shellcheck disable=``, ``# hadolint ignore=`` and ``# zizmor: ignore[...]`` carries a
``# reason``, and so does each rule the linters' config files ignore."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.lint import inventory, linters

#: A directive, then (what this test requires) a second `#` and a reason of a few words.
INLINE = re.compile(r"#\s*(?P<directive>shellcheck\s+disable=\S+|hadolint\s+ignore=\S+|zizmor:\s*ignore\[[^\]]*\])"
                    r"(?P<rest>.*)$")


def unexplained(path: Path, shown: str) -> list[str]:
    problems = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = INLINE.search(line)
        if match and not re.match(r"\s*#\s*\S+(\s+\S+){2,}", match["rest"]):
            problems.append(f"{shown}:{number}: `{match['directive']}` without `# reason` beside it")
    return problems


def config_ignores(path: Path, keys: tuple[str, ...]) -> list[str]:
    """Lines of a YAML config that list an ignored rule without a comment saying why."""
    if not path.is_file():
        return []
    doc = yaml.safe_load(path.read_text()) or {}
    problems = []
    ignored = [rule for key in keys for rule in _find(doc, key)]
    lines = path.read_text().splitlines()
    for rule in ignored:
        line = next((n for n, text in enumerate(lines, 1) if str(rule) in text and not text.lstrip().startswith("#")), 0)
        if not line or "#" not in lines[line - 1].split(str(rule), 1)[1]:
            problems.append(f"{path.name}:{line}: ignores {rule} without a `# reason` on its line")
    return problems


def _find(node, key):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield from (v if isinstance(v, list) else [v])
            else:
                yield from _find(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _find(item, key)


def test_every_suppression_says_why():
    files = inventory.shell_scripts() + inventory.dockerfiles() + inventory.workflows()
    problems = [p for name in files for p in unexplained(inventory.REPO / name, name)]
    problems += config_ignores(linters.HADOLINT_CONFIG, ("ignored",))
    problems += config_ignores(linters.ZIZMOR_CONFIG, ("ignore",))
    assert not problems, "\n".join(problems)


def test_the_one_shellcheck_suppression_is_seen():
    """Not vacuous: the tree has a suppression (stack_env.sh's KUBECTL, used by the scripts that
    source it), and this test reads it."""
    path = inventory.REPO / "scripts" / "stack_env.sh"
    assert any(INLINE.search(line) for line in path.read_text().splitlines())
    assert unexplained(path, "scripts/stack_env.sh") == []


def test_a_suppression_without_a_reason_is_named(tmp_path):
    script = tmp_path / "x.sh"
    script.write_text("#!/bin/sh\n# shellcheck disable=SC2034\nA=1\n# shellcheck disable=SC2086  # word-split on purpose: flags\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x\n# hadolint ignore=DL3008\nRUN true\n")
    workflow = tmp_path / "w.yml"
    workflow.write_text("    - uses: x/y@v1 # zizmor: ignore[unpinned-uses]\n")
    assert unexplained(script, "x.sh") == ["x.sh:2: `shellcheck disable=SC2034` without `# reason` beside it"]
    assert unexplained(dockerfile, "Dockerfile") == ["Dockerfile:2: `hadolint ignore=DL3008` without `# reason` beside it"]
    assert unexplained(workflow, "w.yml") == ["w.yml:1: `zizmor: ignore[unpinned-uses]` without `# reason` beside it"]
    config = tmp_path / ".hadolint.yaml"
    config.write_text("ignored:\n  - DL3008  # apt pins: there is no apt in these images\n  - DL3013\n")
    assert config_ignores(config, ("ignored",)) == [".hadolint.yaml:3: ignores DL3013 without a `# reason` on its line"]
