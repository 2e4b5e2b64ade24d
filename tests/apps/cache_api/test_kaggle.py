"""The optional Kaggle path, offline: credentials are required, and an archive converts to valid tags."""

from __future__ import annotations

import io
import zipfile

import orjson
import pytest

from apps.cache_api import kaggle_download
from apps.cache_api.dataset import load_dataset

CSV = """repo_name,username,description,stargazers_count,forks_count,language,topics,updated_at
redis-py,redis,Redis client,"13,000",2500,Python,"['redis', 'python']",2026-01-02T03:04:05Z
celery,celery,Task queue,25k,4700,Python,"redis, python, queue",2026-01-03T00:00:00Z
bad,someone,no stars,lots,1,Go,redis,2026-01-01T00:00:00Z
ioredis,redis,Node client,14000,1200,TypeScript,redis;nodejs,2025-12-01
"""


def _zip(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_without_credentials_it_stops_with_a_clear_message(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    assert kaggle_download.main(["--dataset", "someone/github-repos", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "KAGGLE_USERNAME and KAGGLE_KEY must be set" in err and "generate_dataset" in err
    assert list(tmp_path.iterdir()) == []


def test_archive_converts_to_tags_the_api_can_load(tmp_path):
    extra = orjson.dumps({"items": [{"full_name": "tiangolo/fastapi", "stars": 80000, "forks": 7000,
                                     "topics": ["python", "api"], "pushed_at": "2026-01-05T00:00:00Z"}]})
    archive = tmp_path / "repos.zip"
    archive.write_bytes(_zip({"repos.csv": CSV, "more.json": extra, "readme.txt": "ignored"}))
    out = tmp_path / "out"
    assert kaggle_download.main(["--zip", str(archive), "--out", str(out), "--per-tag", "2"]) == 0
    dataset = load_dataset(out)
    assert not dataset.skipped
    redis_tag = orjson.loads(dataset.tags["redis"])
    assert [r["name"] for r in redis_tag] == ["celery", "ioredis"]  # top 2 by stars; "bad" skipped
    assert redis_tag[0]["stars"] == 25000 and redis_tag[0]["url"] == "https://github.com/celery/celery"
    python_tag = orjson.loads(dataset.tags["python"])
    assert [r["name"] for r in python_tag] == ["fastapi", "celery"]
    assert python_tag[0]["owner"] == "tiangolo"


def test_bad_dataset_name_and_bad_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    assert kaggle_download.main(["--dataset", "no-slash", "--out", str(tmp_path / "o")]) == 2
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert kaggle_download.main(["--zip", str(junk), "--out", str(tmp_path / "o")]) == 2


def test_kaggle_dataset_comes_from_the_environment_and_empty_means_unset(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_DATASET", "someone/github-repos")
    # The variable alone is enough to get to the download (which then wants credentials).
    assert kaggle_download.main(["--out", str(tmp_path / "o")]) == 2
    assert "KAGGLE_USERNAME and KAGGLE_KEY must be set" in capsys.readouterr().err
    monkeypatch.setenv("KAGGLE_DATASET", "")
    with pytest.raises(SystemExit):
        kaggle_download.main(["--out", str(tmp_path / "o")])
    assert "--dataset (or KAGGLE_DATASET)" in capsys.readouterr().err


def test_a_bad_dataset_name_is_not_echoed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_USERNAME", "u")
    monkeypatch.setenv("KAGGLE_KEY", "k")
    assert kaggle_download.main(["--dataset", "no-slash-s3cret", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "OWNER/NAME" in err and "s3cret" not in err
