"""The four linters of `make test`, each run offline from its PyPI wheel (pinned in
requirements-dev.txt), each turned into a list of findings that name file, line and rule.

A linter that cannot run (missing from the venv, crashed, output it does not document) raises
``LinterError``: a gate that silently found nothing would pass a broken tree.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.lint.inventory import REPO

BIN = Path(sys.executable).parent
ZIZMOR_CONFIG = REPO / ".github" / "zizmor.yml"
HADOLINT_CONFIG = REPO / ".hadolint.yaml"
#: zizmor's strictest persona: its "code smell" audits too (unpinned service images are one).
ZIZMOR_PERSONA = "pedantic"
#: check-jsonschema's own copies of SchemaStore's schemas (no download), and the workflow check
#: it ships that every job has a timeout.
WORKFLOW_SCHEMAS = ("vendor.github-workflows", "custom.github-workflows-require-timeout")
DEPENDABOT_SCHEMA = "vendor.dependabot"


class LinterError(RuntimeError):
    """The linter did not run as documented; the message says what happened."""


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


def tool(name: str) -> Path:
    path = BIN / name
    if not path.is_file():
        raise LinterError(f"{path} is missing: run `make setup` (requirements-dev.txt pins it)")
    return path


def _run(argv: Sequence[str | Path], cwd: Path, ok: Sequence[int]) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=120)
    if out.returncode not in ok:
        raise LinterError(f"`{' '.join(map(str, argv))}` exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out


@dataclass(frozen=True)
class ZizmorReport:
    findings: list[Finding]
    audited: list[str]
    """The inputs zizmor says it completed (workflows, actions, dependabot.yml), relative paths."""


def zizmor(inputs: Sequence[str | Path], cwd: Path = REPO, config: Path = ZIZMOR_CONFIG) -> ZizmorReport:
    """``zizmor --offline`` on workflows, actions and dependabot.yml. Exit 0: clean; 11-14: findings,
    by highest severity (zizmor's documented exit codes)."""
    argv = [tool("zizmor"), "--offline", "--persona", ZIZMOR_PERSONA, "--format", "json", "--no-progress"]
    if config.is_file():
        argv += ["--config", config]
    out = _run([*argv, *inputs], cwd, ok=(0, 11, 12, 13, 14))
    findings = []
    for item in json.loads(out.stdout or "[]"):
        where = item["locations"][0]
        path = where["symbolic"]["key"]["Local"]["verbatim_path"].removeprefix("./")
        line = where["concrete"]["location"]["start_point"]["row"] + 1
        findings.append(Finding(path, line, item["ident"], f"{item['desc']} ({where['symbolic']['annotation']})"))
    if out.returncode != 0 and not findings:
        raise LinterError(f"zizmor exited {out.returncode} without a finding:\n{out.stderr}")
    audited = [m.removeprefix("./") for m in re.findall(r"completed (\S+)", out.stderr)]
    return ZizmorReport(findings, audited)


def check_jsonschema(builtin: str, files: Sequence[str | Path], cwd: Path = REPO) -> list[Finding]:
    """``check-jsonschema --builtin-schema NAME``: one finding per schema error (the JSON path of
    the offending value stands in for a line)."""
    out = _run([tool("check-jsonschema"), "--builtin-schema", builtin, "--output-format", "json", *files],
               cwd, ok=(0, 1))
    report = json.loads(out.stdout)
    findings = []
    for error in report.get("errors", []):
        # An anyOf/oneOf error's own message quotes the whole object; its deepest sub-error says
        # what is wrong ("'raed' is not one of ['read', 'write', 'none']").
        best = error.get("best_deep_match") or error.get("best_match") or error
        findings.append(Finding(error["filename"], 0, f"{builtin} {best['path']}", best["message"]))
    findings += [Finding(e["filename"], 0, f"{builtin} parse", e["message"]) for e in report.get("parse_errors", [])]
    if out.returncode != 0 and not findings:
        raise LinterError(f"check-jsonschema exited {out.returncode} without an error:\n{out.stdout}{out.stderr}")
    return findings


def hadolint(files: Sequence[str | Path], cwd: Path = REPO, config: Path = HADOLINT_CONFIG) -> list[Finding]:
    out = _run([tool("hadolint"), "--config", config, "--format", "json", "--no-color", *files], cwd, ok=(0, 1))
    findings = [Finding(f["file"], f["line"], f["code"], f"{f['level']}: {f['message']}") for f in json.loads(out.stdout)]
    if out.returncode != 0 and not findings:
        raise LinterError(f"hadolint exited {out.returncode} without a finding:\n{out.stdout}{out.stderr}")
    return findings


def shellcheck(files: Sequence[str | Path], cwd: Path = REPO) -> list[Finding]:
    """shellcheck at every severity, following ``source``/``.`` into the files they read (``-x``;
    paths resolve from ``cwd``, the repository root the scripts ``cd`` to)."""
    out = _run([tool("shellcheck"), "--external-sources", "--severity=style", "--format=json1", *files],
               cwd, ok=(0, 1))
    comments = json.loads(out.stdout)["comments"]
    findings = [Finding(c["file"], c["line"], f"SC{c['code']}", f"{c['level']}: {c['message']}") for c in comments]
    if out.returncode != 0 and not findings:
        raise LinterError(f"shellcheck exited {out.returncode} without a finding:\n{out.stderr}")
    return findings
