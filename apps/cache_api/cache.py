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
4. Redis refuses writes (full, or a read-only replica): the lock or the dataset's write is
   refused. The pod then serves the dataset it loaded (once for the episode) from memory,
   ``x-cache: degraded``, and writes it again once Redis accepts writes (write_refusals.py).

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
from apps.cache_api.write_refusals import WriteRefusals, refusal

log = get_logger("cache")

_NOT_FOUND = b""  # stored in the local cache for unknown tags (a real value is never empty)



def _bytes(value: bytes | str | None) -> bytes | None:
    """What the clients answer: bytes (no ``decode_responses``); redis-py's types say str too."""
    return value.encode() if isinstance(value, str) else value

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
        self._loading: asyncio.Task[Dataset] | None = None
        self._resume_task: asyncio.Task[None] | None = None
        self.write_refusals = WriteRefusals(settings.redis_write_retry_seconds, metrics)
        self._fallback_log = Throttle()
        self._corrupt_log = Throttle()
        self._hit_local, self._hit_redis = metrics.hit["local"], metrics.hit["redis"]
        self._hit_fill, self._hit_degraded = metrics.hit["fill"], metrics.hit["degraded"]
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
                (self._hit_degraded if found.layer == "degraded" else self._hit_fill).inc()
        return found

    async def _get(self, client: Redis, key: str) -> bytes | None:
        """``GET key``; a value that is not a valid record list, or a key of another type, is None."""
        try:
            value = _bytes(await client.get(key))
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
            body, layer = await self._fill(tag)
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
        body, raw_index = map(_bytes, await self.redis.primary.mget(self.tag_key(tag), self.index_key))
        if body is not None:  # MGET answers nil for a key of another type
            if is_record_list(body):
                return True, body
            self._corrupt(self.tag_key(tag), "the value is not a JSON list of valid records")
        index = self._index(raw_index)
        if index is not None and tag not in index:
            return True, None
        return False, None

    async def _fill(self, tag: str) -> tuple[bytes | None, str]:
        """(body, layer): ``fill`` (the fleet's load, here or elsewhere) or ``degraded`` (this
        pod's own load, while Redis refuses writes)."""
        deadline = time.monotonic() + self.settings.fill_wait_seconds
        pause = 0.01
        while True:
            decided, body = await self._check_primary(tag)
            if decided:
                return body, "fill"
            if self.write_refusals.active:  # Redis refuses writes: serve this pod's own load
                self.resume_soon()
                return self._held(tag), "degraded"
            self.dataset_reader.check()  # this process cannot load now: 503 at once, not after the wait
            lock = self._lock()
            try:
                acquired = await lock.acquire()
            except RedisError as exc:
                reason = refusal(exc)
                if reason is None:
                    raise
                # No fleet lock can be taken: this pod loads once for the episode and serves that.
                self.write_refusals.refused(reason, "loader lock")
                await self._load_own(reason)
                if not self.write_refusals.active:
                    continue  # the load this fill joined was written to Redis after all
                return self._held(tag), "degraded"
            if acquired:
                try:
                    # Double check: another loader may have finished between our read and our lock.
                    decided, body = await self._check_primary(tag)
                    if decided:
                        return body, "fill"
                    dataset = await self._load_and_store()
                    return dataset.tags.get(tag), "degraded" if self.write_refusals.active else "fill"
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
        except RedisError as exc:  # READONLY (a failover), Redis gone: the lock expires by itself
            log.warning("loader lock not released; it expires after LOCK_TIMEOUT_SECONDS",
                        extra={"problem": str(exc), "lock_timeout_s": self.settings.lock_timeout_seconds})

    def _held(self, tag: str) -> bytes | None:
        dataset = self.write_refusals.dataset
        return dataset.tags.get(tag) if dataset is not None else None

    async def _shared_load(self, work) -> Dataset:
        """Run ``work`` (a dataset read, then a write or a hold) in one task at a time that every
        concurrent caller of this process shares: a fill refused the lock while another fill's
        load runs gets that load, never a second read. Raises DatasetUnavailable."""
        task = self._loading
        if task is None or task.done():
            task = self._loading = asyncio.create_task(work(), name="dataset-load")
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved if every caller left
        return await asyncio.shield(task)

    async def _read_dataset(self) -> Dataset:
        try:
            dataset = await self.dataset_reader.read()
        except DatasetUnavailable as exc:
            self.metrics.dataset_load_failures.labels(exc.problem.reason).inc()
            raise
        self.metrics.dataset_loads.inc()
        return dataset

    async def _load_own(self, reason: str) -> None:
        """Redis refused the fleet lock: this pod loads once for the episode and holds the dataset."""
        if self.write_refusals.active:
            return

        async def read_and_hold() -> Dataset:
            dataset = await self._read_dataset()
            self.write_refusals.hold(dataset, reason)  # before the task is done: no caller sees a gap
            return dataset

        await self._shared_load(read_and_hold)

    async def _load_and_store(self) -> Dataset:
        """With the fleet lock: read the dataset and write it. A write Redis refuses (full,
        read-only) starts or continues an episode: the dataset is held and served from here."""
        return await self._shared_load(self._read_and_store)

    async def _read_and_store(self) -> Dataset:
        started = time.perf_counter()
        # A dataset held while Redis refused writes is written as it is, not read again.
        dataset = self.write_refusals.dataset or await self._read_dataset()
        try:
            await self.store(dataset)
        except RedisError as exc:
            reason = refusal(exc)
            if reason is None:
                raise
            self.write_refusals.refused(reason, "dataset")
            self.write_refusals.hold(dataset, reason)
            return dataset
        self.write_refusals.release()
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
            if self._index(_bytes(await self.redis.primary.get(self.index_key))) is not None:
                self.dataset_reader.clear()
                return
            lock = self._lock()
            if not await lock.acquire():
                return  # another loader is at work: the next probe looks again
            try:
                if self._index(_bytes(await self.redis.primary.get(self.index_key))) is not None:
                    self.dataset_reader.clear()
                else:
                    await self._load_and_store()
            finally:
                await self._release(lock)
        except (DatasetUnavailable, RedisError):
            pass  # recorded by the reader / reported by the probe's PING
        except Exception:  # at most once per DATASET_RETRY_SECONDS: no flood
            log.exception("dataset retry failed")

    # ---- while Redis refuses writes --------------------------------------------------------
    def degraded_status(self) -> dict[str, str] | None:
        """``/readyz``'s degraded fields while this pod serves its own load, or None."""
        return self.write_refusals.status()

    def resume_soon(self) -> None:
        """At most once per ``REDIS_WRITE_RETRY_SECONDS`` (a request or ``/readyz``): try to
        write the held dataset in the background; the first write Redis accepts ends the episode."""
        if not self.write_refusals.retry_due():
            return
        if self._resume_task is not None and not self._resume_task.done():
            return
        self.write_refusals.tried()
        self._resume_task = asyncio.create_task(self._resume(), name="dataset-resume")

    async def _resume(self) -> None:
        dataset = self.write_refusals.dataset
        if dataset is None:
            return
        lock = self._lock()
        try:
            if not await lock.acquire():
                return  # another loader is at work (so Redis takes writes): look again next time
        except RedisError as exc:
            if (reason := refusal(exc)) is not None:
                self.write_refusals.refused(reason, "loader lock")
            return  # anything else: the probe's PING reports it
        try:
            if self._index(_bytes(await self.redis.primary.get(self.index_key))) is None:
                await self.store(dataset)
            self.write_refusals.release()  # written here, or by another pod: Redis takes writes again
        except RedisError as exc:
            if (reason := refusal(exc)) is not None:
                self.write_refusals.refused(reason, "dataset")
        finally:
            await self._release(lock)

    async def aclose(self) -> None:
        for task in (self._retry_task, self._resume_task):
            if task is not None:
                task.cancel()

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
