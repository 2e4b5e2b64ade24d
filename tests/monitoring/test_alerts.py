"""The PrometheusRule the stack renders, run through promtool.

The rules come from the rendered object itself (monitoring/alerts.yaml filled in by
components/monitoring.py for the `local` stack), so the test and the cluster see the same
text. ``promtool check rules`` parses them; ``promtool test rules`` runs
tests/monitoring/alerts.test.yaml, where every alert fires on a bad series and stays
silent on a healthy one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring.tools import require_tool
from tools.render import render_stack

HERE = Path(__file__).resolve().parent
UNIT_TESTS = HERE / "alerts.test.yaml"
DOCS = HERE.parents[1] / "docs" / "monitoring.md"


@pytest.fixture(scope="module")
def rule_spec() -> dict:
    result = render_stack("local")
    (rule,) = result.k8s("PrometheusRule")
    return rule["spec"]


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool")


def _alerts(spec: dict) -> list[dict]:
    return [r for g in spec["groups"] for r in g["rules"] if "alert" in r]


def test_promtool_checks_the_rendered_rules(rule_spec, promtool, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule_spec, sort_keys=False))
    out = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    rules = [r for g in rule_spec["groups"] for r in g["rules"]]
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout


def test_promtool_unit_tests_pass(rule_spec, promtool, tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_spec, sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    out = subprocess.run([promtool, "test", "rules", UNIT_TESTS.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_a_broken_rule_fails_the_unit_tests(rule_spec, promtool, tmp_path):
    """The unit tests can fail: raise the 5xx threshold and its firing case breaks."""
    broken = yaml.safe_load(yaml.safe_dump(rule_spec))
    for rule in _alerts(broken):
        if rule["alert"] == "CacheApiErrorRatio":
            rule["expr"] = rule["expr"].replace("> 0.05", "> 0.5")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(broken, sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    out = subprocess.run([promtool, "test", "rules", UNIT_TESTS.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "CacheApiErrorRatio" in out.stdout + out.stderr


def test_every_alert_fires_and_stays_silent_in_the_unit_tests(rule_spec):
    tests = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fires, silent = set(), set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    names = {r["alert"] for r in _alerts(rule_spec)}
    assert names == fires, f"alerts without a firing case: {sorted(names - fires)}"
    assert names == silent, f"alerts without a silent case: {sorted(names - silent)}"


def test_every_alert_has_a_summary_and_a_runbook_entry(rule_spec):
    docs = DOCS.read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", docs, re.M)}
    for rule in _alerts(rule_spec):
        ann = rule["annotations"]
        assert ann.get("summary"), rule["alert"]
        page, _, anchor = ann["runbook"].partition("#")
        assert page == "docs/monitoring.md" and anchor == rule["alert"].lower(), ann["runbook"]
        assert anchor in anchors, f"docs/monitoring.md has no section {rule['alert']}"


def test_the_client_threshold_comes_from_the_stacks_limit(promtool, tmp_path):
    """A stack whose Redis accepts 2,000 clients renders a threshold of 1,600: the unit test
    written for the local stack's 1,000 (850 clients fire) fails, naming the alert."""
    (rule,) = render_stack("local", {"redisMaxClients": "2000"}).k8s("PrometheusRule")
    assert {"record": "platform:redis_client_limit", "expr": "vector(2000)"}.items() <= rule["spec"]["groups"][0]["rules"][0].items()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    out = subprocess.run([promtool, "test", "rules", UNIT_TESTS.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "RedisClientsNearLimit" in out.stdout + out.stderr
