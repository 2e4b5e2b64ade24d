"""shellcheck, every severity, on every shell script of the tree (found by name and shebang,
sourced files included and followed) and on every workflow `run:` step: clean, and a seeded
defect fails naming the file (or step), line and rule."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.lint import inventory, linters


def test_every_shell_script_is_clean():
    scripts = inventory.shell_scripts()
    found = linters.shellcheck(scripts)
    assert not found, f"shellcheck ({len(scripts)} scripts):\n  " + "\n  ".join(map(str, found))


def shellcheck_steps(steps: list[inventory.RunStep], tmp_path: Path, cwd: Path) -> list[str]:
    files = {}
    for n, step in enumerate(steps):
        path = tmp_path / f"step-{n}.sh"
        path.write_text(step.as_script() + "\n")
        files[str(path)] = step
    found = linters.shellcheck(list(files), cwd=cwd)
    return [f"{files[f.path].label}: line {f.line - 1} of its run: {f.rule}: {f.message}" for f in found]


def test_every_workflow_run_step_is_clean(tmp_path):
    steps = inventory.run_steps()
    assert steps
    found = shellcheck_steps(steps, tmp_path, cwd=inventory.REPO)
    assert not found, "shellcheck:\n  " + "\n  ".join(found)


def test_seeded_unquoted_variable_fails_naming_script_and_line(seeded):
    seeded.copy("scripts/load.sh", "scripts/stack_env.sh")
    line = seeded.append("scripts/load.sh", "echo finished $NS")
    found = linters.shellcheck(["scripts/load.sh"], cwd=seeded.root)
    assert [(f.path, f.line, f.rule) for f in found] == [("scripts/load.sh", line, "SC2086")], found


def test_seeded_defect_in_a_sourced_file_fails_naming_that_file(seeded):
    """stack_env.sh has no shebang (its `# shellcheck shell=bash` directive says the shell): it is
    linted on its own. shellcheck reports a finding only in the files it is given, so a defect in
    a sourced file would pass unseen if only the scripts that source it were linted."""
    seeded.copy("scripts/load.sh", "scripts/stack_env.sh")
    line = seeded.append("scripts/stack_env.sh", "cd $NS_DIR")
    found = {(f.path, f.line, f.rule) for f in linters.shellcheck(inventory.shell_scripts(seeded.root), cwd=seeded.root)}
    assert {("scripts/stack_env.sh", line, "SC2164"), ("scripts/stack_env.sh", line, "SC2086")} <= found, found
    assert not {f for f in found if f[0] == "scripts/load.sh"}, found  # nothing reported in the sourcing script


def test_sources_are_followed():
    """load.sh uses what stack_env.sh defines (KUBECTL, NS, out): with -x shellcheck reads the sourced
    file, so it neither skips it (SC1091) nor takes those names for undefined."""
    assert not linters.shellcheck(["scripts/load.sh"])
    plain = subprocess.run([str(linters.tool("shellcheck")), "--severity=style", "scripts/load.sh"],
                           cwd=inventory.REPO, capture_output=True, text=True)
    assert "SC1091" in plain.stdout  # without following sources: "Not following: scripts/stack_env.sh"


def test_a_new_script_is_linted_without_editing_the_test(tmp_path):
    """A script added anywhere, with a shebang and no .sh suffix, is found (untracked files too) and
    its defect reported."""
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "release").write_text("#!/bin/sh\necho releasing $1\n")
    scripts = inventory.shell_scripts(tmp_path)
    assert scripts == ["tools/release"]
    assert [(f.path, f.line, f.rule) for f in linters.shellcheck(scripts, cwd=tmp_path)] == [("tools/release", 2, "SC2086")]


def test_seeded_defect_in_a_run_step_fails_naming_the_step(seeded, tmp_path):
    workflow = ".github/workflows/ci.yml"
    seeded.copy(workflow)
    seeded.replace(workflow, "run: make images", "run: make images IMAGE_TAG=$(git describe)-`date +%s`")
    found = shellcheck_steps(inventory.run_steps(seeded.root), tmp_path, cwd=seeded.root)
    assert any(": SC2006:" in f for f in found), found  # legacy backticks
    assert all(f.startswith(f"{workflow}: job images, step 2 (Build the three images") for f in found), found
