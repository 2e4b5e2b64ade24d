"""What a Redis at its limits really answers, on every server profile (docs/redis-targets.md,
"At maxmemory"). The worker and producer are built on these facts; each is checked here
against the real server, not assumed.

- at ``maxmemory`` with ``noeviction``, a command flagged ``use-memory`` (DENYOOM) is refused
  with ``OOM``, even one that would move memory or free it later; the others run;
- inside ``MULTI`` every queued command is refused, DENYOOM or not, so the whole
  transaction fails (``ZREM`` + ``HDEL``, kombu's ack, included);
- in a script without a shebang only the first write is checked: a script whose first
  write is ``LREM``/``HDEL`` runs to its end, DENYOOM commands after it included;
- ``INFO memory`` (one section: Redis 6.0) reports ``used_memory``, ``maxmemory`` and
  ``mem_not_counted_for_evict``, what the producer's backpressure reads;
- a server reading its data back answers ``LOADING``; a replica refuses writes with ``READONLY``.
"""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from apps.common.redis_settings import handshake_6_0
from tests.apps.limits import SLOW_LOAD, full_at, populate, replica_of
from tests.apps.redis_fill import overfill
from tests.apps.redis_profiles import PROFILE_NAMES

FULL = full_at("2mb")


@pytest.fixture(params=PROFILE_NAMES)
def full_redis(request, redis_factory):
    server = redis_factory(profile=request.param, settings=FULL)
    with server.client() as c:
        c.rpush("q", "a", "b", "c")
        c.hset("h", "f", "v")
        c.zadd("z", {"m": 1})
        c.sadd("s", "x")
        assert overfill(server) > 10
        yield server, c


DENYOOM = {
    "LPUSH": ("lpush", "q", "n"), "RPUSH": ("rpush", "q", "n"), "BRPOPLPUSH": ("brpoplpush", "q", "q2", 1),
    "RPOPLPUSH": ("rpoplpush", "q", "q2"), "HSET": ("hset", "h", "f2", "v"), "SET": ("set", "k", "v"),
    "SET NX PX (kombu's mutex)": ("set", "mutex", "t", "NX", "PX", "1000"), "ZADD": ("zadd", "z", "2", "m2"),
    "SADD of a member already there": ("sadd", "s", "x"),
}
ALLOWED = {
    "RPOP": ("rpop", "q"), "LREM": ("lrem", "q", "1", "nope"), "HDEL": ("hdel", "h", "nope"),
    "ZREM": ("zrem", "z", "nope"), "DEL": ("del", "nokey"), "EXPIRE": ("expire", "h", "100"),
    "LLEN": ("llen", "q"), "LRANGE": ("lrange", "q", "0", "-1"), "PUBLISH": ("publish", "ch", "x"),
    "INFO memory": ("info", "memory"),
}


def test_denyoom_commands_are_refused_and_the_rest_run(full_redis):
    _, c = full_redis
    for name, command in DENYOOM.items():
        with pytest.raises(redis.OutOfMemoryError):
            c.execute_command(*command)
            pytest.fail(f"{name} ran at maxmemory")
    for name, command in ALLOWED.items():
        try:
            c.execute_command(*command)
        except redis.ResponseError as exc:
            pytest.fail(f"{name} refused at maxmemory: {exc}")


def test_multi_refuses_every_queued_command(full_redis):
    _, c = full_redis
    with pytest.raises(redis.OutOfMemoryError):  # kombu's ack: MULTI ZREM HDEL EXEC
        c.pipeline(transaction=True).zrem("z", "m").hdel("h", "f").execute()
    with pytest.raises(redis.OutOfMemoryError):
        c.pipeline(transaction=True).llen("q").execute()
    assert c.zscore("z", "m") == 1.0 and c.hget("h", "f") == b"v"  # nothing ran
    assert c.pipeline(transaction=False).zrem("z", "m").hdel("h", "f").execute() == [1, 1]


def test_a_script_is_checked_at_its_first_write_only(full_redis):
    _, c = full_redis
    with pytest.raises(redis.OutOfMemoryError):
        c.eval("return redis.call('RPUSH', KEYS[1], 'x')", 1, "q")
    # The worker's put-back: LREM first, then RPUSH (apps/worker/broker.py _RESTORE_INFLIGHT).
    before = c.llen("q")
    moved = c.eval("if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then redis.call('RPUSH', KEYS[2], ARGV[1]) "
                   "return 1 end return 0", 2, "q", "q2", "a")
    assert moved == 1 and c.llen("q") == before - 1 and c.lrange("q2", 0, -1) == [b"a"]
    # The worker's ack: HDEL + ZREM in one script.
    c.eval("redis.call('HDEL', KEYS[1], ARGV[1]) redis.call('ZREM', KEYS[2], ARGV[1])", 2, "h", "z", "f")
    assert not c.hexists("h", "f")


def test_info_memory_reports_what_the_backpressure_reads(full_redis):
    server, c = full_redis
    info = c.info("memory")
    assert info["maxmemory"] == 2 * 1024 * 1024
    assert info["used_memory"] - info["mem_not_counted_for_evict"] > 0.9 * info["maxmemory"]
    # ... and the apps may send it: a single section is Redis 6.0 (the audit checks the wire).
    with redis.Redis(**server.tcp_client_kwargs()) as app:
        assert app.info("memory")["maxmemory"] == info["maxmemory"]


@pytest.mark.slow
@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_a_restarting_server_answers_loading(redis_factory, profile):
    server = redis_factory(profile=profile, settings=SLOW_LOAD)
    populate(server, 40_000)
    server.stop()  # SIGTERM: saves the RDB (save points are set)
    server.start(loaded=False)
    loading = 0
    # The apps' handshake (no CLIENT SETINFO, which a loading server answers LOADING) and
    # no hidden retries: every LOADING reply is seen.
    with redis.Redis(**server.tcp_client_kwargs(), **handshake_6_0(), socket_timeout=30,
                     retry=Retry(NoBackoff(), 0)) as app:
        while True:
            try:
                assert app.dbsize() == 40_000
                break
            except redis.BusyLoadingError:
                loading += 1
    assert loading >= 1


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_a_replica_refuses_writes_readonly(redis_factory, profile):
    primary = redis_factory()
    replica = redis_factory(profile=profile, settings=replica_of(primary))
    with redis.Redis(**replica.tcp_client_kwargs()) as app:
        with pytest.raises(redis.ReadOnlyError):
            app.lpush("q", "x")
        assert app.execute_command("LLEN", "q") == 0  # reads still answer
