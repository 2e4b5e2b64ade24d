"""The in-process cache in front of Redis, and the ``?sort``/``?limit`` views kept in it.

Entries are bytes ready to send; they only ever come from a validated source (a value read
from Redis that passed the record schema, or a fresh load), so a view never meets junk.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Literal

import orjson

from apps.cache_api.dataset import SORT_FIELDS

SortField = Literal["stars", "forks", "updated_at"]
assert set(SortField.__args__) == set(SORT_FIELDS)  # type: ignore[attr-defined]


class LocalCache:
    """A dict with a per-entry deadline and a size bound (oldest entries evicted first)."""

    __slots__ = ("ttl", "max_entries", "_data")

    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._data: dict[object, tuple[float, bytes]] = {}

    def get(self, key: object) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._data.pop(key, None)
            return None
        return entry[1]

    def put(self, key: object, value: bytes) -> None:
        if self.ttl <= 0:
            return
        data = self._data
        data.pop(key, None)
        while len(data) >= self.max_entries:
            data.pop(next(iter(data)))
        data[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self._data.clear()


def _sort_key(field: SortField):
    if field == "updated_at":
        return lambda record: datetime.fromisoformat(record["updated_at"])
    return lambda record: record[field]


def make_view(body: bytes, sort: SortField | None, limit: int | None) -> bytes:
    """The list sorted (descending: top first) and/or cut to ``limit``."""
    records = orjson.loads(body)
    if sort is not None:
        records.sort(key=_sort_key(sort), reverse=True)
    if limit is not None:
        records = records[:limit]
    return orjson.dumps(records)
