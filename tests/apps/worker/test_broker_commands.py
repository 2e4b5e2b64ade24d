"""The transport's Redis 6.0 replacements for kombu 5.7's 6.2 forms, driven directly over
TCP against the Azure Cache for Redis profile (6.2+ commands disabled, every command
audited): the unacked sweep (ZREVRANGEBYSCORE for ZRANGE BYSCORE REV) and the binding
deadline refresh (ZSCORE + ZADD for ZADD GT). The pop (BRPOPLPUSH for BLMOVE) runs in
every worker test."""

from __future__ import annotations

import json
import time

import pytest
from kombu import Connection

from apps.worker.settings import WorkerSettings
from tests.apps.command_audit import AUDIT
from tests.apps.worker.envelopes import real_envelope, variant
from tests.apps.worker.helpers import wait_for
from tests.apps.worker.test_worker import env_for


@pytest.fixture
def azure_cache(redis_factory):
    return redis_factory(profile="azure-cache")


@pytest.fixture
def channel(azure_cache):
    """A channel of the worker's transport with the worker's transport options."""
    from apps.worker.celery_app import celery_config

    env = env_for(azure_cache, CELERY_VISIBILITY_TIMEOUT=10)
    conf = celery_config(WorkerSettings(**{k.lower(): v for k, v in env.items()}))
    conn = Connection(conf["broker_url"], transport=conf["broker_transport"], ssl=conf["broker_use_ssl"],
                      transport_options=conf["broker_transport_options"])
    try:
        yield conn.default_channel
    finally:
        conn.release()


def test_binding_deadline_refresh_is_zadd_gt_without_gt(azure_cache, channel):
    table, deadlines, member, ttl = "_kombu.binding.ex", "_kombu.binding_deadlines", "rk\x06\x16\x06\x16q", 60_000

    def refresh() -> float:
        channel._refresh_binding(keys=[table, deadlines], args=[member, "ex", ttl])
        with azure_cache.client() as c:
            assert c.sismember(table, member)
            return c.zscore(deadlines, "ex")

    now_ms = time.time() * 1000
    assert now_ms + ttl - 5000 <= refresh() <= now_ms + ttl + 5000  # a missing member is added
    with azure_cache.client() as c:
        c.zadd(deadlines, {"ex": 1e15})
    assert refresh() == 1e15  # a later deadline is never lowered
    with azure_cache.client() as c:
        c.zadd(deadlines, {"ex": 1})
    assert refresh() >= now_ms + ttl - 5000  # an earlier one is raised
    channel.sweep_bindings()  # kombu's own sweep script (ZRANGEBYSCORE ... LIMIT): 6.0 forms
    with azure_cache.client() as c:
        assert c.exists(table)  # not overdue: kept


def test_unacked_sweep_restores_what_is_older_than_the_visibility_timeout(azure_cache, channel, send):
    env = env_for(azure_cache)
    envelope = real_envelope(azure_cache, send, env, "celery")
    old, fresh = [variant(envelope) for _ in range(3)], variant(envelope)
    with azure_cache.client() as c:
        for message, age in [*((m, 60) for m in old), (fresh, 1)]:
            tag = message["properties"]["delivery_tag"]
            c.hset("unacked", tag, json.dumps([message, "", "celery"]))
            c.zadd("unacked_index", {tag: time.time() - age})
    assert channel.qos.restore_visible(start=0, num=2, interval=1) == 2  # LIMIT 0 2
    assert channel.qos.restore_visible(num=None, interval=1) == 1  # the rest, no LIMIT
    with azure_cache.client() as c:
        queued = sorted(json.loads(m)["headers"]["id"] for m in c.lrange("celery", 0, -1))
        assert queued == sorted(m["headers"]["id"] for m in old)
        assert c.hkeys("unacked") == [fresh["properties"]["delivery_tag"].encode()]
    # The audit saw the 6.0 form on this profile (and fails the session on any 6.2 one).
    wait_for(lambda: "ZREVRANGEBYSCORE" in AUDIT.commands("azure-cache"), 5, message="audited sweep")
