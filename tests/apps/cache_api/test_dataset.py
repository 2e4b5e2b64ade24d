"""Dataset loading: bad files are skipped with a log line naming the file and the problem; a
dataset with nothing usable is never cached, makes the pod not-ready with a reason, and is
retried soon (by the readiness probe itself: an unready pod gets no request)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path

import orjson
import pytest

from apps.cache_api.dataset import load_dataset
from apps.cache_api.generate_dataset import TAGS, generate
from apps.cache_api.logs import LOGGER_NAME
from apps.cache_api.settings import SAMPLE_DATASET_DIR
from tests.apps.cache_api.conftest import loads, serve, settings_for

GOOD = {
    "name": "redis-py", "owner": "redis", "url": "https://github.com/redis/redis-py",
    "description": "Redis Python client", "stars": 13000, "forks": 2500, "language": "Python",
    "topics": ["redis", "python"], "updated_at": "2026-01-02T03:04:05Z",
}


@pytest.fixture
def records_log():
    """Our logger does not propagate (JSON to stderr): attach a list handler to it."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old)


BAD_FILES = {
    "broken.json": b'[{"name": "x", ',
    "object.json": b'{"name": "not a list"}',
    "string.json": b'"[]"',
    "missing-stars.json": orjson.dumps([{k: v for k, v in GOOD.items() if k != "stars"}]),
    "negative.json": orjson.dumps([{**GOOD, "forks": -1}]),
    "bad-url.json": orjson.dumps([{**GOOD, "url": "not a url"}]),
    "bad-date.json": orjson.dumps([{**GOOD, "updated_at": "yesterday"}]),
    "not-utf8.json": b"\xff\xfe[]",
    "Bad Name!.json": orjson.dumps([GOOD]),
    "go\n.json": orjson.dumps([GOOD]),  # a tag name matches in full: no trailing newline
}
PROBLEMS = {
    "broken.json": "invalid JSON",
    "object.json": "expected a JSON list",
    "string.json": "expected a JSON list",
    "missing-stars.json": "0.stars",
    "negative.json": "0.forks",
    "bad-url.json": "0.url",
    "bad-date.json": "0.updated_at",
    "not-utf8.json": "invalid JSON",
    "Bad Name!.json": "not a valid tag",
    "go\n.json": "not a valid tag",
}


@pytest.fixture
def messy_dir(tmp_path: Path) -> Path:
    d = tmp_path / "messy"
    d.mkdir()
    (d / "good.json").write_bytes(orjson.dumps([GOOD, {**GOOD, "name": "other", "extra_field": 1}]))
    (d / "empty.json").write_bytes(b"[]")
    (d / "notes.txt").write_text("not a dataset file")
    (d / "subdir.json").mkdir()  # a directory named like a file
    for name, content in BAD_FILES.items():
        (d / name).write_bytes(content)
    return d


def test_bad_files_are_skipped_with_a_log_line(messy_dir, records_log):
    dataset = load_dataset(messy_dir)
    assert sorted(dataset.tags) == ["empty", "good"]
    good = orjson.loads(dataset.tags["good"])
    assert [r["name"] for r in good] == ["redis-py", "other"]
    assert "extra_field" not in good[1]  # unknown fields dropped
    assert orjson.loads(dataset.tags["empty"]) == []
    for name, problem in PROBLEMS.items():
        assert problem in dataset.skipped[name], (name, dataset.skipped[name])
    assert "subdir.json" in dataset.skipped
    logged = {Path(r.file).name: r.problem for r in records_log if r.getMessage() == "dataset file skipped"}
    assert logged == dataset.skipped


def test_missing_directory_is_an_error_not_a_crash(tmp_path, records_log):
    dataset = load_dataset(tmp_path / "nope")
    assert dataset.tags == {} and dataset.problem == "the dataset directory cannot be read"
    assert any(r.levelname == "ERROR" and "unreadable" in r.getMessage() and "nope" in r.dataset_dir
               for r in records_log)


def test_empty_or_all_invalid_directory_is_unusable(tmp_path, records_log):
    assert load_dataset(tmp_path).problem == "the dataset directory has no .json file"
    (tmp_path / "broken.json").write_bytes(b"[{")
    (tmp_path / "object.json").write_bytes(b"{}")
    dataset = load_dataset(tmp_path)
    assert dataset.tags == {} and dataset.problem == "no usable dataset file (2 skipped)"
    assert sorted(dataset.skipped) == ["broken.json", "object.json"]
    assert [r.getMessage() for r in records_log if r.levelname == "ERROR"] == ["dataset unusable"] * 2


async def _ready(client) -> tuple[int, dict]:
    response = await client.get("/readyz")
    return response.status_code, response.json()


async def _until_ready(client, timeout: float = 5.0) -> float:
    """Poll /readyz (as the kubelet does) until 200; returns how long it took."""
    started = time.monotonic()
    while (await client.get("/readyz")).status_code != 200:
        assert time.monotonic() - started < timeout, await _ready(client)
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.parametrize("case", ["missing", "empty", "all-invalid"])
async def test_unusable_dataset_is_not_cached_makes_the_pod_unready_and_is_retried(
        redis_server, tmp_path, sample_dataset, case):
    data = tmp_path / "data"
    if case != "missing":
        data.mkdir()
    if case == "all-invalid":
        for name, content in BAD_FILES.items():
            (data / name).write_bytes(content)
    settings = settings_for(redis_server, data, dataset_retry_seconds=1.0)
    async with serve(settings) as (app, client):
        assert await _ready(client) == (200, {"status": "ready"})  # nothing known yet
        started = time.monotonic()
        response = await client.get("/github_stats/python")
        assert response.status_code == 503
        assert response.json()["error"] == "dataset_unavailable"
        assert response.headers["retry-after"] == "1"
        expected = {"missing": "the dataset directory cannot be read",
                    "empty": "the dataset directory has no .json file",
                    "all-invalid": f"no usable dataset file ({len(BAD_FILES)} skipped)"}[case]
        assert response.json()["detail"] == expected
        # Another tag, at once: no second read of the directory, a fast 503.
        assert (await client.get("/github_stats/go")).status_code == 503
        assert time.monotonic() - started < 1.0
        assert loads(app) == 0
        assert app.state.metrics.value("dataset_load_failures_total", {"reason": "dataset_unavailable"}) == 1
        with redis_server.client() as r:
            assert r.keys("*") == []  # nothing cached fleet-wide: no empty index for an hour

        status, body = await _ready(client)
        assert status == 503
        assert body == {"error": "dataset_unavailable", "detail": expected, "status": "unready"}
        assert str(data) not in str(body)  # the detail names no path

        # The volume is fixed: the probe's own retry loads it, without any request.
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(sample_dataset, data)
        await _until_ready(client, timeout=5.0)
        assert loads(app) == 1
        with redis_server.client() as r:
            assert r.exists(f"{settings.cache_key_prefix}:tag:python")
        response = await client.get("/github_stats/python")
        assert response.status_code == 200 and response.headers["x-cache"] == "redis"


async def test_another_pods_load_makes_the_pod_ready_again(redis_server, tmp_path, sample_dataset):
    """A pod whose own volume is empty is ready again (and serves) once another pod filled Redis."""
    empty = tmp_path / "empty"
    empty.mkdir()
    async with serve(settings_for(redis_server, empty, dataset_retry_seconds=0.2)) as (broken, client):
        assert (await client.get("/github_stats/rust")).status_code == 503
        assert (await _ready(client))[0] == 503
        async with serve(settings_for(redis_server, sample_dataset)) as (_, healthy):
            assert (await healthy.get("/github_stats/rust")).status_code == 200
        await _until_ready(client)
        assert (await client.get("/github_stats/rust")).status_code == 200
        assert loads(broken) == 0


def test_timestamps_are_normalised_to_utc(tmp_path):
    (tmp_path / "t.json").write_bytes(orjson.dumps([
        {**GOOD, "updated_at": "2026-01-02T05:04:05+02:00"},
        {**GOOD, "updated_at": "2026-01-02T03:04:05"},
    ]))
    records = orjson.loads(load_dataset(tmp_path).tags["t"])
    assert [r["updated_at"] for r in records] == ["2026-01-02T03:04:05Z", "2026-01-02T03:04:05Z"]


async def test_api_serves_good_tags_and_404s_bad_files(redis_server, messy_dir):
    async with serve(settings_for(redis_server, messy_dir)) as (app, client):
        assert (await client.get("/github_stats/good")).status_code == 200
        assert (await client.get("/github_stats/empty")).json() == []
        for tag in ("broken", "object", "missing-stars", "negative"):
            response = await client.get(f"/github_stats/{tag}")
            assert response.status_code == 404, tag
        assert loads(app) == 1


def test_generator_is_deterministic_and_matches_the_shipped_sample(tmp_path):
    generate(tmp_path / "a")
    generate(tmp_path / "b")
    shipped = sorted(p.name for p in SAMPLE_DATASET_DIR.iterdir())
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == shipped
    for name in shipped:
        a = (tmp_path / "a" / name).read_bytes()
        assert a == (tmp_path / "b" / name).read_bytes()
        assert a == (SAMPLE_DATASET_DIR / name).read_bytes(), f"{name}: regenerate the sample"
    dataset = load_dataset(SAMPLE_DATASET_DIR)
    assert sorted(dataset.tags) == sorted(TAGS) and not dataset.skipped
    for body in dataset.tags.values():
        records = orjson.loads(body)
        assert len(records) == 50
        assert [r["stars"] for r in records] == sorted((r["stars"] for r in records), reverse=True)
        assert len({(r["owner"], r["name"]) for r in records}) == 50


def test_generator_cli(tmp_path):
    from apps.cache_api.generate_dataset import main

    assert main(["--out", str(tmp_path), "--tags", "3", "--repos", "7", "--seed", "1"]) == 0
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 3
    assert all(len(orjson.loads(f.read_bytes())) == 7 for f in files)
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--tags", "0"])
