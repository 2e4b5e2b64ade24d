"""CI gate: checkov over the manifests ``tools/render.py`` writes, every variant.

checkov runs ONCE over one directory holding every valid stack × worker mode × read
path (``tools/variants.py``, the list ``scripts/scan.sh`` uses too), in
its own virtualenv (``.venv-checkov``, pinned by ``requirements-checkov.txt``):
``--framework kubernetes --skip-download``. Zero failed checks. A skip is an annotation
on the object (``checkov.io/skip<N>: CKV_K8S_<id>=<reason>``) with a real reason, used
by checkov, needed (the same run scans a copy without the skip annotations, where each
skipped check must fail), not one of the checks that mirror the hardening rules (validation/security.py), and
listed in ``docs/security.md`` (which the README's map of the docs points to).

Without ``.venv-checkov`` this fails under ``CI=true`` (run ``make setup``) and skips
locally with the same message.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import run_cache
from tests.infra.validation import manifests
from tests.infra.validation.paths import REPO_ROOT
from tests.infra.validation.render import VARIANT_IDS, render_all, rendered

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
SECURITY_DOC = REPO_ROOT / "docs" / "security.md"
README = REPO_ROOT / "README.md"
SKIP_PREFIXES = ("checkov.io/skip", "bridgecrew.io/skip", "cortex.io/skip")
SKIP_VALUE = re.compile(r"^(?P<id>CKV2?_K8S_\d+)=(?P<reason>[^=]+)$")
MIN_REASON_CHARS = 20
# checkov checks that mirror the hardening rules: never skipped (fix the object instead).
NEVER_SKIP = {
    "CKV_K8S_8": "liveness probe",
    "CKV_K8S_9": "readiness probe",
    "CKV_K8S_10": "CPU requests",
    "CKV_K8S_11": "CPU limits",
    "CKV_K8S_12": "memory requests",
    "CKV_K8S_13": "memory limits",
    "CKV_K8S_14": "image tag pinned",
    "CKV_K8S_16": "privileged",
    "CKV_K8S_17": "hostPID",
    "CKV_K8S_18": "hostIPC",
    "CKV_K8S_19": "hostNetwork",
    "CKV_K8S_20": "allowPrivilegeEscalation",
    "CKV_K8S_21": "default namespace",
    "CKV_K8S_22": "readOnlyRootFilesystem",
    "CKV_K8S_23": "root containers",
    "CKV_K8S_28": "NET_RAW capability",
    "CKV_K8S_31": "seccomp profile",
    "CKV_K8S_37": "capabilities",
}
CHECKOV_TIMEOUT_SECONDS = 240


def require_checkov(path: Path, ci: str | None) -> Path:
    """``path`` if executable; else fail under CI=true, skip otherwise (same message)."""
    if os.access(path, os.X_OK):
        return path
    message = f"{path} not found: run `make setup` (checkov lives in its own virtualenv, .venv-checkov)"
    if (ci or "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def checkov_bin() -> Path:
    return require_checkov(CHECKOV, os.environ.get("CI"))


def test_missing_checkov_fails_in_ci_and_skips_locally(tmp_path):
    missing = tmp_path / "checkov"
    with pytest.raises(pytest.fail.Exception, match="make setup"):
        require_checkov(missing, "true")
    with pytest.raises(pytest.skip.Exception, match="make setup"):
        require_checkov(missing, None)


GATE, UNSKIPPED, CHARTS = "gate", "unskipped", "charts"


def unique_chart_releases() -> dict[str, Any]:
    """``id -> ChartRelease``: each distinct chart render over every variant (the same
    release, Kubernetes version and values render the same objects)."""
    found: dict[tuple, Any] = {}
    for variant_id in VARIANT_IDS:
        for rel in rendered(variant_id).charts.values():
            found.setdefault(rel.key, rel)
    return {f"{rel.name}-k8s{rel.kube_version}-{i}": rel for i, rel in enumerate(found.values())}


def _write_chart_objects(dst: Path) -> dict[str, str]:
    """Every distinct chart render's objects (CRDs left out: no check applies to them and
    they are most of checkov's time), one per file; returns ``file path -> object ref``."""
    refs = {}
    for rel_id, rel in unique_chart_releases().items():
        for i, obj in enumerate(rel.objects, start=1):
            if obj.get("kind") == "CustomResourceDefinition":
                continue
            target = dst / rel_id / f"{i:03d}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump(obj, sort_keys=False))
            refs[f"/{CHARTS}/{rel_id}/{target.name}"] = manifests.ref(obj)
    return refs


def _without_skips(obj: dict[str, Any]) -> dict[str, Any] | None:
    """``obj`` without its checkov skip annotations; None if it has none."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    kept = {k: v for k, v in annotations.items() if not k.startswith(SKIP_PREFIXES)}
    if len(kept) == len(annotations):
        return None
    stripped = dict(obj, metadata=dict(meta))
    if kept:
        stripped["metadata"]["annotations"] = kept
    else:
        stripped["metadata"].pop("annotations")
    return stripped


def _scan_tree(dirs: dict[str, Path], scan: Path) -> dict[str, list[str]]:
    """Write what checkov must scan under ``scan``, each distinct manifest once.

    Most objects are the same in every variant; checkov's verdict on a file depends only on
    its content, so a file's result stands for every rendered file with that content.
    ``gate/<sha>.yaml``: each distinct manifest as written; ``unskipped/<sha>.yaml``: each
    distinct manifest that has skip annotations, without them (each skip must be needed).
    Returns scanned path -> the rendered paths (``/<variant>/k8s/<file>``) it stands for.
    """
    stands_for: dict[str, list[str]] = defaultdict(list)
    for variant_id, out in dirs.items():
        for path in sorted((out / "k8s").glob("*.yaml")):
            text = path.read_text()
            copies = [(GATE, text)]
            stripped = _without_skips(yaml.safe_load(text))
            if stripped is not None:
                copies.append((UNSKIPPED, yaml.safe_dump(stripped, sort_keys=False)))
            for part, content in copies:
                name = f"/{part}/{hashlib.sha256(content.encode()).hexdigest()[:16]}.yaml"
                target = scan / name.lstrip("/")
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(content)
                stands_for[name].append(f"/{variant_id}/k8s/{path.name}")
    return stands_for


@pytest.fixture(scope="module")
def report(checkov_bin: Path) -> dict[str, Any]:
    """checkov's JSON report, one run over ``gate/<variant>`` (the rendered manifests as
    written) and ``unskipped/<variant>`` (the same without skip annotations, to prove
    each skip is needed). ``results`` holds the gate's results only. Made once per test
    run (tests/run_cache.py): the tests that read it may run in different xdist workers."""
    return run_cache.value("checkov-report", lambda: _report(checkov_bin, run_cache.run_dir() / "checkov-scan"))


def _report(checkov_bin: Path, scan: Path) -> dict[str, Any]:
    shutil.rmtree(scan, ignore_errors=True)
    scan.mkdir(parents=True)
    assert "/." not in str(scan), f"{scan}: checkov skips paths inside hidden directories"
    stands_for = _scan_tree(dict(zip(VARIANT_IDS, render_all(), strict=True)), scan)  # ours
    chart_refs = _write_chart_objects(scan / CHARTS)  # the charts', once per distinct render
    proc = subprocess.run(
        [str(checkov_bin), "-d", str(scan), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=CHECKOV_TIMEOUT_SECONDS,
        # Sequential parsing: as fast as forked workers for ~300 small files, and deterministic.
        env={**os.environ, "LOG_LEVEL": "WARNING", "CHECKOV_PARALLELIZATION_TYPE": "none"},
    )
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    reports = data if isinstance(data, list) else [data]
    k8s = [r for r in reports if r.get("check_type") == "kubernetes"]
    assert k8s, f"checkov found no Kubernetes manifests under {scan}: {data}"
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    results = k8s[0]["results"]
    unknown = {c["file_path"] for key in ("passed_checks", "failed_checks", "skipped_checks")
               for c in results.get(key, []) if c["file_path"] not in stands_for and c["file_path"] not in chart_refs}
    assert not unknown, f"checkov reported files that were not written for it: {sorted(unknown)}"

    def expand(part: str, key: str) -> list[dict[str, Any]]:
        """Each result once per rendered file it stands for, under that file's path
        (``/<variant>/k8s/<file>``, as scripts/scan.sh reports them)."""
        return [dict(c, file_path=rendered_path)
                for c in results.get(key, []) if c["file_path"].startswith(f"/{part}/")
                for rendered_path in stands_for[c["file_path"]]]

    gate = {key: expand(GATE, key) for key in ("passed_checks", "failed_checks", "skipped_checks")}
    unskipped_failed = {(c["file_path"], c["check_id"]) for c in expand(UNSKIPPED, "failed_checks")}
    chart_results = {key: [c for c in results.get(key, []) if c["file_path"].startswith(f"/{CHARTS}/")]
                     for key in ("passed_checks", "failed_checks")}
    chart_failed = {(c["check_id"], chart_refs[c["file_path"]]) for c in chart_results["failed_checks"]}
    chart_scanned = {c["file_path"] for key in chart_results for c in chart_results[key]}
    return {
        "summary": k8s[0]["summary"],
        "results": gate,
        "chart_failed": chart_failed,
        "chart_scanned": chart_scanned,
        "chart_refs": chart_refs,
        "parsing_errors": results.get("parsing_errors", []),
        "unskipped_failed": unskipped_failed,
    }


def _accepted_chart_findings(text: str | None = None) -> dict[tuple[str, str], str]:
    """``(check id, object ref) -> reason`` from docs/security.md, section 'Checkov findings
    accepted on chart objects' (objects separated by '; ')."""
    text = SECURITY_DOC.read_text() if text is None else text
    section = re.search(r"^## Checkov findings accepted on chart objects\n(?P<body>.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, f"{SECURITY_DOC.name} has no '## Checkov findings accepted on chart objects' section"
    accepted = {}
    for line in section.group("body").splitlines():
        match = re.match(r"^\|\s*`(CKV2?_K8S_\d+)`\s*\|([^|]+)\|([^|]+)\|\s*$", line)
        if match:
            for obj_ref in match.group(2).split(";"):
                accepted[(match.group(1), obj_ref.strip())] = match.group(3).strip()  # as manifests.ref writes it
    return accepted


def chart_finding_problems(failed: set[tuple[str, str]], accepted: dict[tuple[str, str], str]) -> list[str]:
    """Every finding on a chart object is accepted for a reason; every accepted one is real."""
    problems = [f"{check} on {obj_ref}: checkov fails it and docs/security.md does not accept it (fix the values or list it)"
                for check, obj_ref in sorted(failed - set(accepted))]
    problems += [f"{check} on {obj_ref}: accepted in docs/security.md but checkov does not fail it (remove the row)"
                 for check, obj_ref in sorted(set(accepted) - failed)]
    problems += [f"{check} on {obj_ref}: reason too thin" for (check, obj_ref), why in accepted.items()
                 if len(why) < MIN_REASON_CHARS]
    return problems


@pytest.mark.slow
def test_chart_objects_pass_checkov_but_the_accepted_findings(report):
    assert report["chart_scanned"] and len(unique_chart_releases()) >= 4  # keda + monitoring x 2 Kubernetes versions
    scanned_refs = {report["chart_refs"][f] for f in report["chart_scanned"]}
    assert {"Deployment keda/keda-operator", "Deployment monitoring/monitoring-grafana"} <= scanned_refs
    assert chart_finding_problems(report["chart_failed"], _accepted_chart_findings()) == []


def test_the_chart_findings_check_names_what_is_wrong(report):
    accepted = _accepted_chart_findings()
    fewer = {k: v for k, v in accepted.items() if k != ("CKV_K8S_40", "Deployment monitoring/monitoring-grafana")}
    stale = {**accepted, ("CKV_K8S_20", "Deployment keda/keda-operator"): "a made-up finding, long enough reason"}
    assert chart_finding_problems(report["chart_failed"], fewer) == [
        "CKV_K8S_40 on Deployment monitoring/monitoring-grafana: checkov fails it and docs/security.md does not accept it (fix the values or list it)"]
    assert chart_finding_problems(report["chart_failed"], stale) == [
        "CKV_K8S_20 on Deployment keda/keda-operator: accepted in docs/security.md but checkov does not fail it (remove the row)"]


def _variant_of(file_path: str) -> str:
    return file_path.strip("/").split("/", 1)[0]


def test_checkov_has_no_failed_checks(report):
    failed = report["results"]["failed_checks"]
    lines = [
        f"{c['check_id']} {c['check_name']!r}: {c['resource']} in {c['file_path']}"
        + (f" ({c['guideline']})" if c.get("guideline") else "")
        for c in failed
    ]
    assert not failed, "\n".join(lines)


@pytest.mark.slow
def test_checkov_scanned_every_variant(report):
    assert report["summary"]["parsing_errors"] == 0, report["parsing_errors"]
    pinned = (REPO_ROOT / "requirements-checkov.txt").read_text()
    assert f"checkov=={report['summary']['checkov_version']}" in pinned, (
        f"checkov {report['summary']['checkov_version']} is not the pinned one: run `make setup`"
    )
    results = report["results"]["passed_checks"] + report["results"]["skipped_checks"]
    scanned = defaultdict(set)
    for c in results:
        scanned[_variant_of(c["file_path"])].add(c["file_path"])
    assert sorted(scanned) == sorted(VARIANT_IDS)
    for variant_id in VARIANT_IDS:
        # every file of a kind checkov has checks for was checked (a NetworkPolicy has none:
        # checkov lists no result for it, so it cannot count here)
        workloads = {f"/{variant_id}/k8s/{path.name}" for path in rendered(variant_id).k8s_files
                     if path.name.split("-")[1] in ("deployment", "statefulset", "service")}
        assert len(workloads) >= 4, f"{variant_id}: {sorted(workloads)}"
        assert workloads - scanned[variant_id] == set(), f"{variant_id}: checkov did not check these files"


def _skip_annotations() -> list[tuple[str, str, str, str, str]]:
    """(variant, file, object ref, annotation key, value) of every skip annotation."""
    found = []
    for variant_id in VARIANT_IDS:
        r = rendered(variant_id)
        for path, obj in zip(r.k8s_files, r.objects, strict=True):
            for key, value in manifests.annotations(obj).items():
                if key.startswith(SKIP_PREFIXES):
                    found.append((variant_id, f"/{variant_id}/k8s/{path.name}", manifests.ref(obj), key, str(value)))
    return found


def _skip_ids() -> set[str]:
    ids = set()
    for *_, value in _skip_annotations():
        match = SKIP_VALUE.match(value)
        if match:
            ids.add(match.group("id"))
    return ids


def test_every_skip_annotation_carries_a_reason():
    bad = []
    for variant_id, _, where, key, value in _skip_annotations():
        match = SKIP_VALUE.match(value)
        if not match:
            bad.append(f"{variant_id} {where}: {key}={value!r} is not 'CKV_K8S_<n>=<reason>' (one '=' only)")
        elif len(match.group("reason").strip()) < MIN_REASON_CHARS or "no comment" in match.group("reason").lower():
            bad.append(f"{variant_id} {where}: {key}: reason {match.group('reason')!r} is too thin")
    assert not bad, "\n".join(bad)


def test_no_skip_of_a_rule_issue_5_requires():
    bad = [
        f"{variant_id} {where}: {value.split('=')[0]} ({NEVER_SKIP[value.split('=')[0]]}) must be fixed, not skipped"
        for variant_id, _, where, _, value in _skip_annotations()
        if value.split("=")[0] in NEVER_SKIP
    ]
    assert not bad, "\n".join(bad)


def test_checkov_honours_every_skip_with_its_reason(report):
    """Each annotated skip shows up as SKIPPED with our reason: no stale or mistyped skips."""
    skipped = {(c["file_path"], c["check_id"]): c["check_result"].get("suppress_comment", "") for c in report["results"]["skipped_checks"]}
    problems = []
    for variant_id, file_path, where, _key, value in _skip_annotations():
        match = SKIP_VALUE.match(value)
        if not match:
            continue  # reported by test_every_skip_annotation_carries_a_reason
        comment = skipped.get((file_path, match.group("id")))
        if comment is None:
            problems.append(f"{variant_id} {where}: {match.group('id')} is annotated but checkov skipped nothing (stale or not applicable)")
        elif comment.strip() != match.group("reason").strip():
            problems.append(f"{variant_id} {where}: checkov recorded reason {comment!r}")
    for (file_path, check_id), comment in skipped.items():
        if not comment.strip() or comment == "No comment provided":
            problems.append(f"{file_path}: {check_id} skipped without a reason")
    assert not problems, "\n".join(problems)


def test_every_skip_is_needed(report):
    """Without its annotation, each skipped check really fails on that object (no
    blanket or leftover skips)."""
    unneeded = []
    for variant_id, file_path, where, _, value in _skip_annotations():
        match = SKIP_VALUE.match(value)
        if match and (file_path, match.group("id")) not in report["unskipped_failed"]:
            unneeded.append(f"{variant_id} {where}: {match.group('id')} passes without the skip; remove the annotation")
    assert not unneeded, "\n".join(unneeded)


def _skip_section() -> str:
    """The body of docs/security.md's section 'Checkov skips'."""
    section = re.search(r"^## Checkov skips\n(?P<body>.*?)(?=^## |\Z)", SECURITY_DOC.read_text(), re.S | re.M)
    assert section, f"{SECURITY_DOC.name} has no '## Checkov skips' section"
    return section.group("body")


def _documented_skips() -> dict[str, str]:
    """``CKV id -> row`` of the skip table in docs/security.md (section 'Checkov skips')."""
    rows = {}
    for line in _skip_section().splitlines():
        match = re.match(r"^\|\s*`?(CKV2?_K8S_\d+)`?\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_docs_list_every_skip_and_only_those():
    used = _skip_ids()
    documented = _documented_skips()
    missing = sorted(used - set(documented))
    stale = sorted(set(documented) - used)
    assert not missing, f"skips used but not listed in docs/security.md: {missing}"
    assert not stale, f"docs/security.md lists skips no object uses: {stale}"
    for check_id, row in documented.items():
        cells = [c.strip() for c in row.split("|")]
        assert any(len(c) >= MIN_REASON_CHARS for c in cells), f"docs/security.md: {check_id} has no reason"


def test_readme_points_to_the_skip_list():
    """Every skip is listed with its reason, in one place: each skip in use has a row with a
    reason in docs/security.md's skip table (the last cell: why it does not apply), no stale
    row, and the README links that page."""
    ids = set(_skip_ids())
    rows = dict(re.findall(r"^\| `(CKV_[A-Z0-9_]+)`[^|]*\|[^|]*\|[^|]*\| *([^|]*?) *\|$",
                           _skip_section(), re.M))
    assert ids, "no checkov skip found in the rendered manifests"
    assert set(rows) == ids, f"docs/security.md skip table: missing {sorted(ids - set(rows))}, stale {sorted(set(rows) - ids)}"
    for check_id, reason in rows.items():
        assert len(reason) >= MIN_REASON_CHARS, f"docs/security.md: {check_id} has no reason"
    assert "docs/security.md" in README.read_text()
