"""The workflows and dependabot.yml against the JSON schemas check-jsonschema vendors (SchemaStore's
github-workflow and dependabot-2.0, no download), plus its check that every job has a timeout:
clean, and a seeded typo fails naming the file and the JSON path of the mistake."""

from __future__ import annotations

import re

import pytest

from tests.lint import inventory, linters

WORKFLOW = ".github/workflows/ci.yml"
DEPENDABOT = ".github/dependabot.yml"


@pytest.mark.parametrize("schema", linters.WORKFLOW_SCHEMAS)
def test_every_workflow_is_valid(schema):
    files = inventory.workflows()
    assert WORKFLOW in files
    found = linters.check_jsonschema(schema, files)
    assert not found, "\n".join(map(str, found))


def test_dependabot_config_is_valid():
    found = linters.check_jsonschema(linters.DEPENDABOT_SCHEMA, [DEPENDABOT])
    assert not found, "\n".join(map(str, found))


@pytest.mark.parametrize("schema, old, new, path, says", [
    ("vendor.github-workflows", "      contents: read\n", "      contents: raed\n",
     "$.jobs.test.permissions.contents", "'raed' is not one of"),
    ("vendor.github-workflows", "    runs-on: ubuntu-24.04\n", "    run-on: ubuntu-24.04\n",
     "$.jobs.test", "'runs-on' is a required property"),
    ("custom.github-workflows-require-timeout", r"^    timeout-minutes: \d+\n", "",
     "$.jobs.test", "'timeout-minutes' is a required property"),
], ids=["bad-permission", "misspelt-key", "job-without-timeout"])
def test_seeded_workflow_mistake_fails_naming_where(seeded, schema, old, new, path, says):
    seeded.copy(WORKFLOW)
    seeded.sub(WORKFLOW, old if old.startswith("^") else re.escape(old), new)
    found = linters.check_jsonschema(schema, [WORKFLOW], cwd=seeded.root)
    assert [(f.path, f.rule) for f in found] == [(WORKFLOW, f"{schema} {path}")], found
    assert says in found[0].message


def test_seeded_dependabot_mistake_fails(seeded):
    seeded.copy(DEPENDABOT)
    seeded.replace(DEPENDABOT, "package-ecosystem: docker", "package-ecosystem: dockerfile")
    found = linters.check_jsonschema(linters.DEPENDABOT_SCHEMA, [DEPENDABOT], cwd=seeded.root)
    assert found and found[0].path == DEPENDABOT and "$.updates[2]" in found[0].rule, found
