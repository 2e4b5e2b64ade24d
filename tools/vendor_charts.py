"""Vendor the Helm charts the stack installs, as released, into ``charts/``.

    python -m tools.vendor_charts              # clones each source repository at its tag
    python -m tools.vendor_charts --repo prometheus-community/helm-charts=/path/to/clone ...

``charts/sources.yaml`` says what to vendor: each chart's repository, tag and path, and
its sub-charts (each from its own repository and tag, placed under the parent's
``charts/``). The tree is exported with ``git archive`` at the tag, then ``helm package``
builds the chart archive exactly as a chart release does (``.helmignore`` applied,
``Chart.yaml`` as Helm writes it) and that archive is unpacked into ``charts/<name>/``.
The commit of each tag is recorded back into ``charts/sources.yaml``. Needs git, the
pinned helm and network access to the repositories; tests only read the result.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.helm_install import find_helm  # noqa: E402

CHARTS_DIR = ROOT / "charts"
SOURCES = CHARTS_DIR / "sources.yaml"


def load_sources(path: Path = SOURCES) -> list[dict]:
    return yaml.safe_load(path.read_text())["charts"]


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


class Repos:
    """Local git directories per ``owner/name``: given with --repo, or cloned once."""

    def __init__(self, given: dict[str, Path], workdir: Path):
        self.given, self.workdir = given, workdir
        self.cloned: dict[str, Path] = {}

    def path(self, repo: str) -> Path:
        if repo in self.given:
            return self.given[repo]
        if repo not in self.cloned:
            dest = self.workdir / repo.replace("/", "+")
            _git("clone", "--quiet", "--bare", "--filter=blob:none", f"https://github.com/{repo}", str(dest))
            self.cloned[repo] = dest
        return self.cloned[repo]

    def export(self, repo: str, tag: str, path: str, dest: Path) -> str:
        """``path`` of ``repo`` at ``tag`` into ``dest``; returns the tag's commit."""
        git_dir = self.path(repo)
        commit = _git("--git-dir", str(git_dir), "rev-parse", f"{tag}^{{commit}}")
        archive = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "--format=tar", commit, path],
                                 check=True, capture_output=True).stdout
        with tempfile.TemporaryDirectory() as tmp:
            tar_path = Path(tmp) / "x.tar"
            tar_path.write_bytes(archive)
            with tarfile.open(tar_path) as tar:
                tar.extractall(tmp, filter="data")
            shutil.copytree(Path(tmp) / path, dest)
        return commit


def vendor(sources: list[dict], repos: Repos, out_dir: Path) -> list[dict]:
    helm = find_helm()
    with tempfile.TemporaryDirectory(prefix="vendor-") as tmp:
        work = Path(tmp)
        for chart in sources:
            src = work / "src" / chart["name"]
            chart["commit"] = repos.export(chart["repo"], chart["tag"], chart["path"], src)
            for sub in chart.get("subcharts") or []:
                sub["commit"] = repos.export(sub["repo"], sub["tag"], sub["path"], src / "charts" / sub["name"])
            pkg = work / "pkg"
            subprocess.run([str(helm), "package", str(src), "-d", str(pkg)], check=True, capture_output=True)
            archive = pkg / f"{chart['name']}-{chart['version']}.tgz"
            target = out_dir / chart["name"]
            if target.exists():
                shutil.rmtree(target)
            with tarfile.open(archive) as tar:
                tar.extractall(out_dir, filter="data")
    return sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", action="append", default=[], metavar="OWNER/NAME=GITDIR",
                        help="use a local clone (bare or not) instead of cloning")
    ns = parser.parse_args(argv)
    given = {}
    for item in ns.repo:
        name, _, path = item.partition("=")
        given[name] = Path(path)
    sources = load_sources()
    with tempfile.TemporaryDirectory(prefix="vendor-repos-") as tmp:
        vendor(sources, Repos(given, Path(tmp)), CHARTS_DIR)
    doc = yaml.safe_load(SOURCES.read_text())
    doc["charts"] = sources
    SOURCES.write_text(yaml.safe_dump(doc, sort_keys=False))
    for chart in sources:
        print(f"vendored {chart['name']} {chart['version']} ({chart['repo']} {chart['tag']} {chart['commit'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
