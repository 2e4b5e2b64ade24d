"""Cache-aside over Redis with stampede protection, behind a tiny in-process cache.

Read path for a tag (``get``):

1. in-process cache (``local``), entries live ``LOCAL_CACHE_TTL_SECONDS`` (the staleness bound);
2. ``GET`` on the read client (``redis``: the primary or the replica sidecar);
   Concurrent local misses for a tag share one Redis read (in-process single flight);
3. a Redis miss: one *fill* per tag per process, and one dataset load per fleet (a Redis
   lock, ``SET NX PX`` with a token, released by compare-and-delete).
   The lock holder re-checks Redis, loads the whole dataset, writes every tag with a
   jittered TTL plus the index of valid tags in one transaction. Everyone else polls the
   primary until the value appears, retrying the lock each round, so when a loader dies
   the next one takes over as soon as its lock expires. After ``FILL_WAIT_SECONDS``
   without a value the request fails with :class:`FillTimeout` (503).

Values are the encoded JSON bytes, sent as they are: no parse and re-serialize per request.
Unknown tags are answered from the index (and cached in-process like any value).
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime
from typing import Literal, NamedTuple

import orjson
from redis.exceptions import LockError, RedisError

from apps.cache_api.dataset import SORT_FIELDS, TAG_RE, Dataset, load_dataset
from apps.cache_api.logs import get_logger
from apps.cache_api.metrics import Metrics
from apps.cache_api.redis_clients import RedisClients
from apps.cache_api.settings import Settings

log = get_logger("cache")

SortField = Literal["stars", "forks", "updated_at"]
assert set(SortField.__args__) == set(SORT_FIELDS)  # type: ignore[attr-defined]

_NOT_FOUND = b""  # stored in the local cache for unknown tags (a real value is never empty)


class FillTimeout(Exception):
    """No loader produced the value within ``FILL_WAIT_SECONDS``."""


class DatasetUnavailable(Exception):
    """The dataset directory could not be read; nothing was cached."""


class Lookup(NamedTuple):
    body: bytes | None  # None: unknown tag
    layer: str  # where it came from: local | redis | fill


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


class TagCache:
    def __init__(self, settings: Settings, redis: RedisClients, metrics: Metrics) -> None:
        self.settings = settings
        self.redis = redis
        self.metrics = metrics
        self.local = LocalCache(settings.local_cache_ttl_seconds, settings.local_cache_max_entries)
        prefix = settings.cache_key_prefix
        self._tag_prefix = f"{prefix}:tag:"
        self.index_key = f"{prefix}:tags"
        self.lock_key = f"{prefix}:lock:dataset"
        self._inflight: dict[str, asyncio.Task[Lookup]] = {}
        self._fallback_logged_at = float("-inf")
        self._hit_local, self._hit_redis = metrics.hit["local"], metrics.hit["redis"]
        self._hit_fill = metrics.hit["fill"]
        self._miss_local, self._miss_redis = metrics.miss["local"], metrics.miss["redis"]

    def tag_key(self, tag: str) -> str:
        return self._tag_prefix + tag

    # ---- read path -------------------------------------------------------------------------

    async def get(self, tag: str) -> Lookup:
        """The tag's encoded list, or ``Lookup(None, ...)`` if the dataset has no such tag."""
        cached = self.local.get(tag)
        if cached is not None:
            self._hit_local.inc()
            return Lookup(cached or None, "local")
        self._miss_local.inc()
        if not TAG_RE.match(tag):
            return Lookup(None, "local")
        # Concurrent requests for a tag missing locally share one Redis read (and one fill).
        found = await self._single_flight(tag)
        if found.layer == "redis":
            self._hit_redis.inc()
        else:
            self._miss_redis.inc()
            if found.body is not None:
                self._hit_fill.inc()
        return found

    async def _read(self, key: str) -> bytes | None:
        try:
            return await self.redis.reader.get(key)
        except RedisError as exc:
            if not self.redis.has_replica:
                raise
            self.metrics.read_fallbacks.inc()
            now = time.monotonic()
            if now - self._fallback_logged_at >= 1.0:  # at most one line a second
                self._fallback_logged_at = now
                log.warning("read replica failed; reading from the primary", extra={"problem": str(exc)})
            return await self.redis.primary.get(key)

    async def _fetch(self, tag: str) -> Lookup:
        body = await self._read(self.tag_key(tag))
        layer = "redis"
        if body is None:
            body = await self._fill(tag)
            layer = "fill"
        self.local.put(tag, body or _NOT_FOUND)
        return Lookup(body, layer)

    async def get_view(self, tag: str, sort: SortField | None, limit: int | None) -> Lookup:
        if sort is None and limit is None:
            return await self.get(tag)
        key = (tag, sort, limit)
        cached = self.local.get(key)
        if cached is not None:
            self._hit_local.inc()
            return Lookup(cached, "local")
        found = await self.get(tag)
        if found.body is None:
            return found
        view = make_view(found.body, sort, limit)
        self.local.put(key, view)
        return Lookup(view, found.layer)

    # ---- fill path -------------------------------------------------------------------------

    async def _single_flight(self, tag: str) -> Lookup:
        task = self._inflight.get(tag)
        if task is None:
            task = asyncio.create_task(self._fetch(tag), name=f"cache-fetch-{tag}")
            self._inflight[tag] = task
            task.add_done_callback(lambda t: self._fill_done(tag, t))
        # shield: a client that disconnects does not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    def _fill_done(self, tag: str, task: asyncio.Task) -> None:
        if self._inflight.get(tag) is task:
            del self._inflight[tag]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning if every waiter left

    async def _check_primary(self, tag: str) -> tuple[bool, bytes | None]:
        """(decided, body): decided when the value is there or the index says the tag is unknown."""
        body, index = await self.redis.primary.mget(self.tag_key(tag), self.index_key)
        if body is not None:
            return True, body
        if index is not None and tag not in orjson.loads(index):
            return True, None
        return False, None

    async def _fill(self, tag: str) -> bytes | None:
        deadline = time.monotonic() + self.settings.fill_wait_seconds
        pause = 0.01
        while True:
            decided, body = await self._check_primary(tag)
            if decided:
                return body
            lock = self.redis.primary.lock(
                self.lock_key, timeout=self.settings.lock_timeout_seconds, blocking=False
            )
            if await lock.acquire():
                try:
                    # Double check: another loader may have finished between our read and our lock.
                    decided, body = await self._check_primary(tag)
                    if decided:
                        return body
                    dataset = await self._load_and_store()
                    return dataset.tags.get(tag)
                finally:
                    await self._release(lock)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.metrics.fill_timeouts.inc()
                log.warning("cache fill timed out", extra={"tag": tag, "waited_s": self.settings.fill_wait_seconds})
                raise FillTimeout(f"no loader filled the cache within {self.settings.fill_wait_seconds:g} s")
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.1)

    async def _release(self, lock) -> None:
        try:
            await lock.release()
        except LockError:
            log.warning("loader lock expired before the load finished; raise LOCK_TIMEOUT_SECONDS",
                        extra={"lock_timeout_s": self.settings.lock_timeout_seconds})

    async def _load_and_store(self) -> Dataset:
        started = time.perf_counter()
        if self.settings.dataset_load_delay_seconds:
            await asyncio.sleep(self.settings.dataset_load_delay_seconds)
        dataset = await asyncio.to_thread(load_dataset, self.settings.dataset_dir)
        if dataset.error is not None:
            self.metrics.dataset_load_failures.inc()
            raise DatasetUnavailable(dataset.error)
        self.metrics.dataset_loads.inc()
        await self.store(dataset)
        log.info("dataset loaded into redis", extra={
            "tags": len(dataset.tags), "skipped_files": len(dataset.skipped),
            "seconds": round(time.perf_counter() - started, 4),
        })
        return dataset

    def _ttl_ms(self) -> int:
        ttl = self.settings.cache_ttl_seconds
        return max(1, int(1000 * ttl * (1 + random.uniform(0, self.settings.cache_ttl_jitter_ratio))))

    async def store(self, dataset: Dataset) -> None:
        """Every tag (own jittered TTL) and the index of valid tags, in one transaction."""
        max_ttl_ms = max(1, int(1000 * self.settings.cache_ttl_seconds * (1 + self.settings.cache_ttl_jitter_ratio)))
        async with self.redis.primary.pipeline(transaction=True) as pipe:
            for tag, body in dataset.tags.items():
                pipe.set(self.tag_key(tag), body, px=self._ttl_ms())
            # The index outlives every tag key, so a present tag is never answered 404.
            pipe.set(self.index_key, orjson.dumps(sorted(dataset.tags)), px=max_ttl_ms)
            await pipe.execute()
