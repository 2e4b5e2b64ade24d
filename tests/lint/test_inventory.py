"""The lint gates find what they lint in the tree: a new script, Dockerfile or workflow is linted
without editing a test, and nothing that is not one is."""

from __future__ import annotations

import subprocess

import pytest

from tests.lint import inventory


def make_tree(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


TREE = {
    "tools/new-tool": "#!/bin/sh\necho hi\n",                # shell by shebang, no suffix
    "tools/env-bash": "#!/usr/bin/env -S bash -e\necho hi\n",  # env with options
    "lib/sourced.sh": "# shellcheck shell=bash\nX=1\n",        # sourced: no shebang, by suffix
    "tools/script.py": "#!/usr/bin/env python3\nprint()\n",    # another interpreter
    "hooks/pre-push.txt": "#!/bin/dash\necho hi\n",        # whatever its name
    "docs/shells.md": "Scripts start with #!/bin/sh\n",     # a shebang only counts on line 1
    "bin/blob": "\x7fELF\0\0binary",
    "svc/Dockerfile": "FROM x\n",
    "svc/Dockerfile.dev": "FROM x\n",
    "svc/build.Dockerfile": "FROM x\n",
    "svc/Dockerfile.dockerignore": "*\n",
    ".github/workflows/a.yml": "on: push\n",
    ".github/workflows/b.yaml": "on: push\n",
    ".github/workflows/notes.md": "",
    ".venv/bin/activate.sh": "# a venv's script: ignored\n",
}


@pytest.mark.parametrize("git", [True, False], ids=["git-checkout", "plain-tree"])
def test_finds_scripts_dockerfiles_and_workflows_by_content_and_name(tmp_path, git):
    make_tree(tmp_path, TREE)
    if git:
        subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
        (tmp_path / ".gitignore").write_text(".venv/\n")
    assert inventory.shell_scripts(tmp_path) == ["hooks/pre-push.txt", "lib/sourced.sh", "tools/env-bash", "tools/new-tool"]
    assert inventory.dockerfiles(tmp_path) == ["svc/Dockerfile", "svc/Dockerfile.dev", "svc/build.Dockerfile"]
    assert inventory.workflows(tmp_path) == [".github/workflows/a.yml", ".github/workflows/b.yaml"]


def test_run_steps_are_scripts_with_their_shell(tmp_path):
    make_tree(tmp_path, {".github/workflows/ci.yml": """\
on: push
defaults:
  run:
    shell: bash
jobs:
  a:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@0000000000000000000000000000000000000000 # v0
      - name: greet
        run: echo "${{ github.ref_name }}"
      - run: Write-Host hi
        shell: pwsh
      - run: echo plain
        shell: sh -e {0}
"""})
    steps = inventory.run_steps(tmp_path)
    assert [(s.job, s.index, s.name, s.shell) for s in steps] == [("a", 1, "greet", "bash"), ("a", 3, "echo plain", "sh")]
    assert steps[0].as_script() == '#!/usr/bin/env bash\necho "GITHUB_EXPRESSION"'  # no `${{` left for the shell


def test_the_checkout_has_the_expected_kinds():
    scripts = inventory.shell_scripts()
    assert {".ci/run", "scripts/setup.sh", "scripts/stack_env.sh"} <= set(scripts)
    assert not [s for s in scripts if s.startswith((".venv", "out/"))]
    assert [s.label for s in inventory.run_steps()], "the workflows have run: steps"
