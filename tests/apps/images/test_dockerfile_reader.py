"""The Dockerfile reader and the build context: what they understand, and that they refuse
the rest loudly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.apps.images.catalog import REPO, dockerfiles_by_image
from tests.apps.images.context import sent_paths
from tests.apps.images.dockerfile import AddUser, CompileAll, Copy, DockerfileError, PipInstall, parse


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return path


def test_reads_env_forms_continuations_workdir_copy_run_user_cmd(tmp_path):
    spec = parse(write(tmp_path, """\
# syntax=docker/dockerfile:1
FROM python:3.11-slim
ENV A=1 \\
    B="two words" \\
    # a comment inside a continuation, as Docker allows
    C=/app/data
ENV LEGACY value with spaces
WORKDIR /srv
WORKDIR app
COPY apps/x/requirements.lock apps/x/
COPY apps/x /srv/app/apps/x
RUN groupadd --gid 10001 app && useradd --uid 10001 app
RUN pip install --require-hashes --no-deps -r /srv/app/apps/x/requirements.lock
RUN python -m compileall -q /srv/app/apps
USER 10001:10001
EXPOSE 8000 9808/tcp
CMD ["python", "-m", "apps.x"]
"""), tmp_path)
    assert spec.base == "python:3.11-slim"
    assert spec.env == {"A": "1", "B": "two words", "C": "/app/data", "LEGACY": "value with spaces"}
    assert spec.workdir == "/srv/app"
    assert spec.steps == (
        Copy("apps/x/requirements.lock", "/srv/app/apps/x/"),  # relative dst: under WORKDIR
        Copy("apps/x", "/srv/app/apps/x"),
        AddUser(("groupadd", "--gid", "10001", "app")), AddUser(("useradd", "--uid", "10001", "app")),
        PipInstall(("--require-hashes", "--no-deps", "-r", "/srv/app/apps/x/requirements.lock")),
        CompileAll(("-q", "/srv/app/apps")),
    )
    assert spec.user == "10001:10001" and spec.expose == (8000, 9808)
    assert spec.cmd == ("python", "-m", "apps.x")


@pytest.mark.parametrize("line, why", [
    ("ADD apps /app/apps", "not understood"),
    ("ARG VERSION=1", "not understood"),
    ("ENTRYPOINT [\"tini\"]", "not understood"),
    ("HEALTHCHECK CMD true", "not understood"),
    ("COPY --chown=app apps /app/apps", "flags"),
    ("COPY apps/*.py /app/", "wildcards"),
    ("COPY a b /app/", "exactly"),
    ("RUN apt-get install -y curl", "'apt-get' not understood"),
    ("RUN pip install x; rm -rf /root", "only commands joined by &&"),
    ("RUN pip install $EXTRA", "substitution"),
    ("ENV PATH=/opt/bin:$PATH", "substitution"),
    ("ENV PYTHONPATH=/app", "ENV PYTHONPATH is not understood"),
    ("ENV PIP_INDEX_URL=https://example.invalid/simple", "PIP_INDEX_URL may change what pip installs"),
    ("FROM python:3.11-slim AS second", "multi-stage"),
    ("CMD python -m apps.x", "exec (JSON) form"),
])
def test_refuses_what_it_does_not_understand(tmp_path, line, why):
    path = write(tmp_path, f"FROM python:3.11-slim\nWORKDIR /app\n{line}\nCMD [\"python\"]\n")
    with pytest.raises(DockerfileError, match=re.escape(why)) as failed:
        parse(path, tmp_path)
    assert f"{path}:3:" in str(failed.value)  # names the file and line


def test_each_dockerfile_uses_the_ignore_file_buildkit_would(tmp_path):
    dockerfiles = {p.parent.name: p for p in dockerfiles_by_image().values()}
    assert parse(dockerfiles["cache_api"], REPO).ignore_file == REPO / "apps" / "cache_api" / "Dockerfile.dockerignore"
    assert parse(dockerfiles["worker"], REPO).ignore_file == REPO / ".dockerignore"
    assert parse(dockerfiles["producer"], REPO).ignore_file == REPO / ".dockerignore"


def test_build_context_follows_the_dockerignore_rules(tmp_path):
    for rel in ("apps/a/main.py", "apps/a/__pycache__/main.cpython-311.pyc", "apps/a/data/x.json", "apps/b/b.py",
                "apps/a/stray.pyc", ".venv/lib/site.py", "secrets.env"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    root_ignore = tmp_path / ".dockerignore"
    root_ignore.write_text("# only apps/\n*\n!apps/\n**/__pycache__\n**/*.pyc\n")
    # docker-py always keeps the root .dockerignore itself; no COPY of ours reads it.
    files = {p for p in sent_paths(tmp_path, root_ignore) if (tmp_path / p).is_file()} - {".dockerignore"}
    assert files == {"apps/a/main.py", "apps/a/data/x.json", "apps/b/b.py"}
    narrow = tmp_path / "apps" / "a" / "Dockerfile.dockerignore"
    narrow.write_text("*\n!apps/a/\n**/__pycache__\n**/*.pyc\n")
    files = {p for p in sent_paths(tmp_path, narrow) if (tmp_path / p).is_file()} - {".dockerignore"}
    assert files == {"apps/a/main.py", "apps/a/data/x.json", "apps/a/Dockerfile.dockerignore"}
