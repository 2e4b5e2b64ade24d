"""zizmor, offline, at its pedantic persona, on the workflows and dependabot.yml: clean,
with no finding ignored; and each defect it exists to catch, seeded in a copy, fails naming its
rule, file and line."""

from __future__ import annotations

import pytest

from tests.lint import inventory, linters

WORKFLOW = ".github/workflows/ci.yml"
DEPENDABOT = ".github/dependabot.yml"
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"
REDIS = "redis:7.4.2@sha256:fbdbaea47b9ae4ecc2082ecdb4e1cea81e32176ffb1dcf643d422ad07427e5d9"


def test_workflows_and_dependabot_config_are_clean():
    report = linters.zizmor(["."])
    assert not report.findings, "zizmor:\n  " + "\n  ".join(map(str, report.findings))
    # It audited what the tree holds (a gate that collected nothing would pass anything).
    assert set(inventory.workflows()) | {DEPENDABOT} <= set(report.audited), report.audited


def line_of(seeded, name: str, needle: str) -> int:
    return next(n for n, line in enumerate((seeded.root / name).read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("rule, old, new, at", [
    ("unpinned-uses", CHECKOUT, "actions/checkout@v7", "actions/checkout@v7"),
    ("unpinned-images", REDIS, "redis:7.4.2", "image: redis:7.4.2"),
    ("artipacked", "        with:\n          persist-credentials: false\n", "", "- uses: actions/checkout@"),
    ("template-injection", 'docker exec "$REDIS_CONTAINER"', "docker exec ${{ job.services.redis.id }}",
     "- name: Require a password on the Redis service"),  # zizmor points at the step
    ("excessive-permissions", "permissions: {}\n", "", "on:"),
], ids=["action-by-tag", "service-image-by-tag", "checkout-keeps-token", "expression-in-run", "default-permissions"])
def test_seeded_workflow_defect_fails_naming_rule_and_line(seeded, rule, old, new, at):
    seeded.copy(WORKFLOW)
    seeded.replace(WORKFLOW, old, new)
    found = [f for f in linters.zizmor(["."], cwd=seeded.root).findings if f.rule == rule]
    assert found, f"zizmor did not report {rule}"
    assert found[0].path == WORKFLOW
    if rule != "excessive-permissions":  # that one points at the workflow's top, not a line of ours
        assert line_of(seeded, WORKFLOW, at) in {f.line for f in found}, found


def test_dependabot_without_cooldown_fails(seeded):
    seeded.copy(DEPENDABOT)
    seeded.replace(DEPENDABOT, "    cooldown:\n      default-days: 7\n", "")
    found = [f for f in linters.zizmor(["."], cwd=seeded.root).findings if f.rule == "dependabot-cooldown"]
    assert found and found[0].path == DEPENDABOT
    assert found[0].line == line_of(seeded, DEPENDABOT, "package-ecosystem: github-actions")
