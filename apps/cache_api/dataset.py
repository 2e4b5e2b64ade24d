"""The dataset: one JSON file per tag in ``DATASET_DIR``, each a list of repository records.

Loading never raises for bad input: a file that is not valid JSON, not a list, or whose
records do not match :class:`RepoRecord` is skipped with a log line naming the file and
the problem. A directory that cannot be read, or that holds no usable file, is an
*unusable* dataset (``Dataset.problem``): the cache never stores it.

:func:`is_record_list` checks a value read back from Redis against the same schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from apps.cache_api.logs import get_logger

log = get_logger("dataset")

TAG_RE = re.compile(r"[a-z0-9][a-z0-9._+-]{0,63}")
"""Valid tag names (file stems, lower-case), matched in full (``TAG_RE.fullmatch``: no trailing
newline). Anything else is an unknown tag, without a Redis round trip."""

SAMPLE_DIR_NOTE = (
    "Generated sample dataset (one JSON list of repository records per tag).\n"
    "Regenerate: python -m apps.cache_api.generate_dataset --out apps/cache_api/dataset\n"
)

MAX_FILE_BYTES = 32 * 1024 * 1024
SORT_FIELDS = ("stars", "forks", "updated_at")

NonNegative = Annotated[int, Field(ge=0)]


class RepoRecord(BaseModel):
    """One repository. Unknown fields are dropped; missing or mistyped ones reject the file."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://\S+$")
    description: str | None = None
    stars: NonNegative
    forks: NonNegative
    language: str | None = None
    topics: list[str] = Field(default_factory=list)
    updated_at: datetime

    @field_validator("updated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Stored in UTC (naive times are taken as UTC), so every record has the same format."""
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


RECORDS = TypeAdapter(list[RepoRecord])


@dataclass(frozen=True)
class Dataset:
    """Tag -> the encoded JSON list (bytes, ready to send). ``skipped``: file name -> problem.

    ``problem`` is set when the dataset is unusable: the directory cannot be read, or it
    holds no usable ``*.json`` file. That is not an empty dataset: the cache does not store
    it (requests get 503 and the pod reports not-ready until it is fixed). The text names
    no path or file (it is shown to clients); the log lines do.
    """

    tags: dict[str, bytes]
    skipped: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


def tag_for(path: Path) -> str:
    return path.stem.lower()


def encode_records(records: list[RepoRecord]) -> bytes:
    return orjson.dumps(RECORDS.dump_python(records, mode="json"))


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def load_file(path: Path) -> bytes:
    """The encoded, validated records of one file; raises ``ValueError`` naming the problem."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"file too large ({size} bytes > {MAX_FILE_BYTES})")
    raw = path.read_bytes()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValueError(f"expected a JSON list of records, got {type(data).__name__}")
    try:
        records = RECORDS.validate_python(data)
    except ValidationError as exc:
        raise ValueError(f"wrong schema: {_describe(exc)}") from None
    return encode_records(records)


def is_record_list(body: bytes) -> bool:
    """Whether ``body`` (a value read back from Redis) is a JSON list of valid records."""
    try:
        RECORDS.validate_json(body)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return False
    return True


def load_dataset(directory: Path) -> Dataset:
    """Read every ``*.json`` in ``directory``. Never raises: problems are logged and skipped."""
    tags: dict[str, bytes] = {}
    skipped: dict[str, str] = {}
    try:
        paths = sorted(p for p in directory.iterdir() if p.suffix.lower() == ".json")
    except OSError as exc:
        log.error("dataset directory unreadable", extra={"dataset_dir": str(directory), "problem": str(exc)})
        return Dataset(tags={}, problem="the dataset directory cannot be read")
    for path in paths:
        tag = tag_for(path)
        try:
            if not TAG_RE.fullmatch(tag):
                raise ValueError(f"file name is not a valid tag (must match {TAG_RE.pattern})")
            if tag in tags:
                raise ValueError(f"duplicate tag {tag!r} (file names differ only in case)")
            tags[tag] = load_file(path)
        except (OSError, ValueError) as exc:
            skipped[path.name] = str(exc)
            log.warning("dataset file skipped", extra={"file": str(path), "problem": str(exc)})
    if not tags:
        problem = (f"no usable dataset file ({len(skipped)} skipped)" if skipped
                   else "the dataset directory has no .json file")
        log.error("dataset unusable", extra={"dataset_dir": str(directory), "problem": problem})
        return Dataset(tags={}, skipped=skipped, problem=problem)
    log.info("dataset loaded", extra={"dataset_dir": str(directory), "tags": len(tags), "skipped": len(skipped)})
    return Dataset(tags=tags, skipped=skipped)
