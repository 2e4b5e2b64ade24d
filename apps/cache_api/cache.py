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

   Every waiter, in this process or another, stops at its own ``FILL_WAIT_SECONDS``; the
   load itself stops at ``DATASET_LOAD_TIMEOUT_SECONDS`` (loader.py) and releases the lock.

Values are the encoded JSON bytes, sent as they are: no parse and re-serialize per request.
Unknown tags are answered from the index (and cached in-process like any value).

Nothing read from Redis is trusted: a value is checked against the record schema once, when
it enters the in-process cache (not per request). A value that is not a valid record list,
a key of another type, or an index that is not a list of tags is a miss; the fill that
follows rewrites it (a load ``SET``s every tag, whatever the key held). Each such value is
counted (``cache_corrupt_values_total``) and logged at most once a second, without a traceback.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import NamedTuple

import orjson
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError, ResponseError

from apps.cache_api.dataset import TAG_RE, Dataset, is_record_list
from apps.cache_api.loader import DatasetReader, DatasetUnavailable, LoadProblem
from apps.cache_api.local_cache import LocalCache, SortField, make_view
from apps.cache_api.logs import Throttle, get_logger
from apps.cache_api.metrics import Metrics
from apps.cache_api.redis_clients import RedisClients
from apps.cache_api.settings import Settings

log = get_logger("cache")

_NOT_FOUND = b""  # stored in the local cache for unknown tags (a real value is never empty)


class FillTimeout(Exception):
    """No loader produced the value within ``FILL_WAIT_SECONDS``."""


class Lookup(NamedTuple):
    body: bytes | None  # None: unknown tag
    layer: str  # where it came from: local | redis | fill


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
        self.dataset_reader = DatasetReader(settings)
        self._inflight: dict[str, asyncio.Task[Lookup]] = {}
        self._retry_task: asyncio.Task[None] | None = None
        self._fallback_log = Throttle()
        self._corrupt_log = Throttle()
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
        if not TAG_RE.fullmatch(tag):
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

    async def _get(self, client: Redis, key: str) -> bytes | None:
        """``GET key``; a value that is not a valid record list, or a key of another type, is None."""
        try:
            value = await client.get(key)
        except ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            self._corrupt(key, "the key is not a string")
            return None
        if value is not None and not is_record_list(value):
            self._corrupt(key, "the value is not a JSON list of valid records")
            return None
        return value

    async def _read(self, key: str) -> bytes | None:
        try:
            return await self._get(self.redis.reader, key)
        except RedisError as exc:
            if not self.redis.has_replica:
                raise
            self.metrics.read_fallbacks.inc()
            suppressed = self._fallback_log.allow()
            if suppressed is not None:
                log.warning("read replica failed; reading from the primary",
                            extra={"problem": str(exc), "suppressed_since_last": suppressed})
            return await self._get(self.redis.primary, key)

    def _corrupt(self, key: str, problem: str) -> None:
        self.metrics.corrupt_values.inc()
        suppressed = self._corrupt_log.allow()
        if suppressed is not None:
            log.warning("corrupt cache value ignored; the next load rewrites it",
                        extra={"key": key, "problem": problem, "suppressed_since_last": suppressed})

    def _index(self, raw: bytes | None) -> list[str] | None:
        """The index of valid tags, or None if absent or not a JSON list of strings."""
        if raw is None:
            return None
        try:
            tags = orjson.loads(raw)
        except orjson.JSONDecodeError:
            tags = None
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            self._corrupt(self.index_key, "the index is not a JSON list of tags")
            return None
        return tags

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
        # wait_for: each request waits at most FILL_WAIT_SECONDS from its own arrival, even
        # when it joined a fetch that is stuck behind a slow load.
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.settings.fill_wait_seconds)
        except TimeoutError:
            raise self._fill_timeout(tag) from None

    def _fill_timeout(self, tag: str) -> FillTimeout:
        self.metrics.fill_timeouts.inc()
        log.warning("cache fill timed out", extra={"tag": tag, "waited_s": self.settings.fill_wait_seconds})
        return FillTimeout("no loader filled the cache in time; retry shortly")

    def _fill_done(self, tag: str, task: asyncio.Task) -> None:
        if self._inflight.get(tag) is task:
            del self._inflight[tag]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning if every waiter left

    async def _check_primary(self, tag: str) -> tuple[bool, bytes | None]:
        """(decided, body): decided when the value is there or the index says the tag is unknown."""
        body, raw_index = await self.redis.primary.mget(self.tag_key(tag), self.index_key)
        if body is not None:  # MGET answers nil for a key of another type
            if is_record_list(body):
                return True, body
            self._corrupt(self.tag_key(tag), "the value is not a JSON list of valid records")
        index = self._index(raw_index)
        if index is not None and tag not in index:
            return True, None
        return False, None

    async def _fill(self, tag: str) -> bytes | None:
        deadline = time.monotonic() + self.settings.fill_wait_seconds
        pause = 0.01
        while True:
            decided, body = await self._check_primary(tag)
            if decided:
                return body
            self.dataset_reader.check()  # this process cannot load now: 503 at once, not after the wait
            lock = self._lock()
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
                raise self._fill_timeout(tag)
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.1)

    def _lock(self):
        return self.redis.primary.lock(self.lock_key, timeout=self.settings.lock_timeout_seconds, blocking=False)

    async def _release(self, lock) -> None:
        try:
            await lock.release()
        except LockError:
            log.warning("loader lock expired before the load finished; raise LOCK_TIMEOUT_SECONDS",
                        extra={"lock_timeout_s": self.settings.lock_timeout_seconds})

    async def _load_and_store(self) -> Dataset:
        """Read the dataset (bounded: loader.py) and write it; raises DatasetUnavailable."""
        started = time.perf_counter()
        try:
            dataset = await self.dataset_reader.read()
        except DatasetUnavailable as exc:
            self.metrics.dataset_load_failures.labels(exc.problem.reason).inc()
            raise
        self.metrics.dataset_loads.inc()
        await self.store(dataset)
        log.info("dataset loaded into redis", extra={
            "tags": len(dataset.tags), "skipped_files": len(dataset.skipped),
            "seconds": round(time.perf_counter() - started, 4),
        })
        return dataset

    # ---- readiness -------------------------------------------------------------------------

    def dataset_problem(self) -> LoadProblem | None:
        """Why this process cannot load the dataset now (``/readyz``), or None."""
        return self.dataset_reader.problem()

    def retry_soon(self) -> None:
        """Called by ``/readyz``: when a retry is due, one load attempt in the background.

        A pod that is not ready gets no traffic, so its requests would never retry: the
        probe does. If the dataset is in Redis already (another pod loaded it), the pod can
        serve and is ready again without a load.
        """
        if not self.dataset_reader.retry_due():
            return
        if self._retry_task is not None and not self._retry_task.done():
            return
        self._retry_task = asyncio.create_task(self._retry(), name="dataset-retry")

    async def _retry(self) -> None:
        try:
            if self._index(await self.redis.primary.get(self.index_key)) is not None:
                self.dataset_reader.clear()
                return
            lock = self._lock()
            if not await lock.acquire():
                return  # another loader is at work: the next probe looks again
            try:
                if self._index(await self.redis.primary.get(self.index_key)) is not None:
                    self.dataset_reader.clear()
                else:
                    await self._load_and_store()
            finally:
                await self._release(lock)
        except (DatasetUnavailable, RedisError):
            pass  # recorded by the reader / reported by the probe's PING
        except Exception:  # at most once per DATASET_RETRY_SECONDS: no flood
            log.exception("dataset retry failed")

    async def aclose(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()

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
