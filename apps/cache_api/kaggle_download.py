"""Optional: build the dataset from a Kaggle dataset of GitHub repositories.

    KAGGLE_USERNAME=... KAGGLE_KEY=... python -m apps.cache_api.kaggle_download \\
        --dataset OWNER/NAME --out DIR [--per-tag 50] [--tags 20]
    python -m apps.cache_api.kaggle_download --zip archive.zip --out DIR   # already downloaded

Downloads the dataset's zip from Kaggle's public API (HTTP basic auth with the API token),
reads every CSV or JSON file in it, maps common column names onto the record schema
(``name``, ``owner``, ``url``, ``description``, ``stars``, ``forks``, ``language``,
``topics``, ``updated_at``), groups repositories by topic and writes the ``--tags`` most
common topics, each with its ``--per-tag`` most-starred repositories, as ``<tag>.json``.
Rows that cannot be mapped are skipped and counted. Without credentials it stops with a
clear message; the shipped sample (``generate_dataset``) needs none.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import os
import sys
import urllib.error
import urllib.request
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import orjson
from pydantic import ValidationError

from apps.cache_api.dataset import RECORDS, TAG_RE, RepoRecord

API = "https://www.kaggle.com/api/v1/datasets/download/{dataset}"
MAX_ZIP_BYTES = 512 * 1024 * 1024

ALIASES = {
    "name": ("name", "repo_name", "repository", "repo", "full_name"),
    "owner": ("owner", "username", "user", "owner_login", "author"),
    "url": ("url", "html_url", "repo_url", "link"),
    "description": ("description", "about"),
    "stars": ("stars", "stargazers_count", "stargazers", "star_count", "stars_count"),
    "forks": ("forks", "forks_count", "fork_count"),
    "language": ("language", "primary_language", "main_language"),
    "topics": ("topics", "tags", "topic"),
    "updated_at": ("updated_at", "last_updated", "pushed_at", "last_commit", "updated"),
}


class KaggleError(RuntimeError):
    pass


def credentials() -> tuple[str, str]:
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if not user or not key:
        raise KaggleError(
            "KAGGLE_USERNAME and KAGGLE_KEY must be set (Kaggle > Settings > API > Create New Token); "
            "or use the generated sample: python -m apps.cache_api.generate_dataset --out DIR"
        )
    return user, key


def download(dataset: str, timeout: float = 60.0) -> bytes:
    if dataset.count("/") != 1:
        raise KaggleError("--dataset (or KAGGLE_DATASET) must be OWNER/NAME")
    user, key = credentials()
    request = urllib.request.Request(API.format(dataset=dataset))
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_ZIP_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise KaggleError(f"Kaggle answered {exc.code} for {dataset} (check the name and the token)") from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise KaggleError(f"cannot reach Kaggle: {exc}") from None
    if len(data) > MAX_ZIP_BYTES:
        raise KaggleError(f"archive larger than {MAX_ZIP_BYTES} bytes")
    return data


def _rows(archive: zipfile.ZipFile):
    for info in archive.infolist():
        name = info.filename.lower()
        if name.endswith(".csv"):
            with archive.open(info) as raw:
                yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"))
        elif name.endswith(".json"):
            data = orjson.loads(archive.read(info))
            if isinstance(data, dict):
                data = next((v for v in data.values() if isinstance(v, list)), [])
            yield from (row for row in data if isinstance(row, dict))


def _pick(row: dict, field: str):
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    for alias in ALIASES[field]:
        value = lowered.get(alias)
        if value not in (None, ""):
            return value
    return None


def _number(value) -> int:
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().lower().replace(",", "")
    scale = 1000 if text.endswith("k") else 1
    return int(float(text.rstrip("k")) * scale)


def _topics(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        items = value
    else:
        text = str(value).strip().strip("[]")
        items = [t.strip().strip("'\"") for t in text.replace(";", ",").split(",")]
    return [t.lower() for t in items if t]


def to_record(row: dict) -> RepoRecord:
    name, owner, url = _pick(row, "name"), _pick(row, "owner"), _pick(row, "url")
    if name and "/" in str(name) and not owner:  # "owner/name"
        owner, name = str(name).split("/", 1)
    if not url and owner and name:
        url = f"https://github.com/{owner}/{name}"
    if url and (not owner or not name):
        parts = str(url).rstrip("/").split("/")
        owner, name = owner or parts[-2], name or parts[-1]
    return RepoRecord(
        name=name, owner=owner, url=url, description=_pick(row, "description"),
        stars=_number(_pick(row, "stars") or 0), forks=_number(_pick(row, "forks") or 0),
        language=_pick(row, "language"), topics=_topics(_pick(row, "topics")),
        updated_at=_pick(row, "updated_at"),
    )


def convert(archive_bytes: bytes, out: Path, per_tag: int = 50, tags: int = 20) -> dict[str, int]:
    """Write ``<tag>.json`` files; returns counts (rows read, skipped, tags written)."""
    by_topic: dict[str, list[RepoRecord]] = defaultdict(list)
    counts: Counter[str] = Counter()
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        for row in _rows(archive):
            counts["rows"] += 1
            try:
                record = to_record(row)
            except (ValidationError, ValueError, TypeError, IndexError):
                counts["skipped"] += 1
                continue
            for topic in set(record.topics):
                if TAG_RE.fullmatch(topic):
                    by_topic[topic].append(record)
    out.mkdir(parents=True, exist_ok=True)
    popular = sorted(by_topic, key=lambda t: (-len(by_topic[t]), t))[:tags]
    for topic in popular:
        top = sorted(by_topic[topic], key=lambda r: (-r.stars, r.owner, r.name))[:per_tag]
        (out / f"{topic}.json").write_bytes(orjson.dumps(RECORDS.dump_python(top, mode="json")))
    counts["tags"] = len(popular)
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Cache API dataset from a Kaggle dataset.")
    source = parser.add_mutually_exclusive_group()
    # An empty KAGGLE_DATASET counts as unset, like every other variable.
    source.add_argument("--dataset", default=os.environ.get("KAGGLE_DATASET") or None,
                        help="Kaggle OWNER/NAME (default: KAGGLE_DATASET)")
    source.add_argument("--zip", type=Path, help="convert an archive already downloaded")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-tag", type=int, default=50)
    parser.add_argument("--tags", type=int, default=20)
    args = parser.parse_args(argv)
    if args.zip is None and not args.dataset:
        parser.error("one of --dataset (or KAGGLE_DATASET) and --zip is required")
    try:
        data = args.zip.read_bytes() if args.zip else download(args.dataset)
        counts = convert(data, args.out, args.per_tag, args.tags)
    except (KaggleError, OSError, zipfile.BadZipFile) as exc:
        print(f"kaggle_download: {exc}", file=sys.stderr)
        return 2
    if not counts["tags"]:
        print(f"kaggle_download: no usable rows ({counts})", file=sys.stderr)
        return 1
    print(f"kaggle_download: wrote {counts['tags']} tags to {args.out} ({counts})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
