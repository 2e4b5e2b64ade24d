"""The producer's backpressure (apps/producer/admission.py): what it reads, when it holds."""

from __future__ import annotations

from apps.producer.admission import TASK_BYTES, Admission, reading

MB = 1024 * 1024


def test_reading_counts_what_redis_counts_against_maxmemory():
    info = {"used_memory": 100 * MB, "maxmemory": 240 * MB, "mem_not_counted_for_evict": 4 * MB}
    r = reading(info, None)
    assert (r.used, r.limit, r.reported_limit) == (96 * MB, 240 * MB, 240 * MB)


def test_the_smaller_limit_counts_and_azure_managed_reports_none():
    # Azure Managed Redis: INFO memory has no maxmemory (the stack passes the SKU's size).
    amr = {"used_memory": 10 * MB}
    assert reading(amr, None).limit is None
    assert reading(amr, 500_000_000).limit == 500_000_000
    assert reading({"used_memory": 1, "maxmemory": 200 * MB}, 240 * MB).limit == 200 * MB
    assert reading({"used_memory": 1, "maxmemory": 0}, 240 * MB).limit == 240 * MB  # 0 = unlimited


class FakeRedis:
    def __init__(self, used: int, maxmemory: int):
        self.used, self.maxmemory, self.reads = used, maxmemory, 0

    def info(self) -> dict:
        self.reads += 1
        return {"used_memory": self.used, "maxmemory": self.maxmemory}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_holds_at_the_threshold_and_overshoots_by_one_task_at_most():
    redis, clock = FakeRedis(used=70 * MB, maxmemory=100 * MB), Clock()
    adm = Admission(redis.info, None, 80, refresh_seconds=10, clock=clock)
    admitted = 0
    while adm.room():
        adm.sent()
        redis.used += 1500  # what one task really takes (below TASK_BYTES)
        admitted += 1
        assert admitted < 100_000
    assert redis.used <= 80 * MB + TASK_BYTES  # never more than one task past the threshold
    assert redis.used > 80 * MB - 2 * TASK_BYTES  # and it did use the room it had
    assert redis.reads < admitted / 100  # INFO is not read per task
    redis.used -= 5 * MB  # the workers drained
    assert adm.room()


def test_reads_again_when_stale_and_after_a_hold():
    redis, clock = FakeRedis(used=10 * MB, maxmemory=100 * MB), Clock()
    adm = Admission(redis.info, None, 80, refresh_seconds=0.5, clock=clock)
    assert adm.room() and redis.reads == 1
    assert adm.room() and redis.reads == 1
    clock.now += 0.6
    assert adm.room() and redis.reads == 2
    redis.used = 90 * MB
    clock.now += 0.6
    assert not adm.room()
    reads = redis.reads
    assert not adm.room() and redis.reads == reads + 1  # while holding, every look is fresh
    assert "used 94371840 B of maxmemory 104857600 B" in adm.describe()


def test_no_limit_known_means_no_backpressure():
    adm = Admission(lambda: {"used_memory": 10 * MB}, None, 80)
    assert adm.room() and adm.threshold is None
    assert "no limit known" in adm.describe()


def test_task_bytes_bounds_what_a_real_task_takes(redis_any):
    """The overshoot bound holds only if TASK_BYTES is at least what a queued task really
    adds to used_memory (measured on each profile, with the producer's own records)."""
    from tests.apps.producer.test_producer import producer

    n = 400
    assert producer(redis_any.env, "--count", "1", "--rate", "0").returncode == 0  # queue + binding exist
    with redis_any.client() as c:
        before = c.info("memory")["used_memory"]
        out = producer(redis_any.env, "--count", str(n), "--rate", "0", "--seed", "2")
        assert out.returncode == 0, out.stderr
        per_task = (c.info("memory")["used_memory"] - before) / n
    # A queued message is about 535 characters (docs/capacity.md); used_memory also moves with
    # the clients' buffers (457 B a task seen on the Azure Cache profile), so the floor only
    # proves the tasks were counted. The ceiling is the bound that matters.
    assert 300 < per_task <= TASK_BYTES, per_task
