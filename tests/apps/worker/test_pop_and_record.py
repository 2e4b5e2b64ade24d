"""A task's round trips (apps/worker/broker.py, apps/worker/tasks.py), against real
redis-servers and real workers: while the queue has messages one script pops and records
each (no inflight list, no ``LREM`` of the message), the task's own transaction removes the
unacked record with its result (no second ack), and what the script cannot record by its
text still goes the long way, or to the dead-letter list."""

from __future__ import annotations

import json
import time
import uuid

from apps.worker.broker import _POP_AND_RECORD
from apps.worker.celery_app import build_app
from apps.worker.settings import WorkerSettings
from tests.apps.worker.envelopes import RECORD, encode, real_envelope, variant
from tests.apps.worker.helpers import wait_for
from tests.apps.worker.test_broker_commands import azure_cache, channel  # noqa: F401 - fixtures
from tests.apps.worker.test_worker import env_for, user_keys


def calls(client) -> dict[str, int]:
    return {name.removeprefix("cmdstat_").upper(): int(v["calls"])
            for name, v in client.info("commandstats").items()}


def test_a_task_costs_one_pop_script_and_one_transaction(redis_any, send, workers):
    """On every Redis profile: 40 queued tasks, each popped and recorded by one EVALSHA and
    finished by one MULTI/EXEC that holds the ack; the inflight list and kombu's
    MULTI/EXEC recording are never used while the queue has messages."""
    env = env_for(redis_any)
    ids = [send(env, RECORD) for _ in range(40)]
    with redis_any.client() as c:
        before = calls(c)
    worker = workers(env, concurrency=2).wait_ready()
    with redis_any.client() as c:
        wait_for(lambda: len(user_keys(c)) == 40 and not c.exists("unacked"), 60, message="40 tasks done")
        after = calls(c)
        assert c.hlen("unacked") == 0 and c.zcard("unacked_index") == 0 and c.llen("celery") == 0
        assert {f"users:{i}".encode() for i in ids} == user_keys(c)
    sent = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert sent.get("LREM", 0) == 0, sent  # nothing went through <queue>.inflight
    assert sent.get("RPOPLPUSH", 0) == 0, sent
    assert sent["HDEL"] == 40, sent  # one ack per task, inside the task's transaction
    # The tasks' own, and kombu's queue declarations at start (3); kombu's recording MULTI,
    # one a task, is gone.
    assert 40 <= sent["EXEC"] <= 45, sent
    assert 40 <= sent["EVALSHA"] < 50, sent  # one pop script per task (+ periodic scripts)
    assert worker.alive()


def test_messages_the_script_cannot_record_by_their_text(redis_server, send, workers):
    """A tag the text names twice, or in compact JSON (another producer's), takes the long
    way (inflight, then recorded by Python) and runs; a tag the text names where kombu
    does not read it is dead-lettered from ``unacked``; nothing stays anywhere."""
    env = env_for(redis_server)
    envelope = real_envelope(redis_server, send, env, "celery")
    twice = variant(envelope, headers={"delivery_tag": "not-the-tag"})
    compact = variant(envelope)
    elsewhere = variant(envelope, headers={"delivery_tag": "in-the-headers"})
    del elsewhere["properties"]["delivery_tag"]
    good = send(env, RECORD)
    with redis_server.client() as c:
        c.lpush("celery", encode(twice), json.dumps(compact, separators=(",", ":")), encode(elsewhere))
    worker = workers(env).wait_ready()
    expect = {f"users:{m['headers']['id']}".encode() for m in (twice, compact)} | {f"users:{good}".encode()}
    with redis_server.client() as c:
        wait_for(lambda: user_keys(c) == expect and c.llen("celery.dead_letter") == 1, 30,
                 message="3 tasks done and 1 dead letter")
        entry = json.loads(c.lindex("celery.dead_letter", 0))
        assert not c.exists("unacked", "unacked_index", "celery.inflight", "celery")
    assert "delivery_tag" in entry["reason"], entry["reason"]
    assert json.loads(entry["payload"])["headers"]["delivery_tag"] == "in-the-headers"
    assert worker.alive()


def test_the_pop_script_reloads_itself_after_redis_forgets_it(redis_server, send, workers):
    """A restarted or failed-over Redis has no scripts (NOSCRIPT): the pop loads it again."""
    env = env_for(redis_server)
    workers(env).wait_ready()
    first = send(env, RECORD)
    with redis_server.client() as c:
        wait_for(lambda: c.exists(f"users:{first}"), 30, message="first task")
        c.script_flush()
        ids = [send(env, RECORD) for _ in range(10)]
        wait_for(lambda: all(c.exists(f"users:{i}") for i in ids), 30, message="10 tasks after SCRIPT FLUSH")


def test_a_celery_sent_message_is_recorded_by_the_script_and_restored_whole(azure_cache, channel):  # noqa: F811
    """A message as Celery's own send_task writes it (base64 body, every header) is
    recorded in kombu's format, and kombu's restore puts back the same message."""
    env = env_for(azure_cache)
    app = build_app(WorkerSettings(**{k.lower(): v for k, v in env.items()}))
    task_id = app.send_task("users.process", args=[RECORD]).id
    with azure_cache.client() as c:
        raw = c.lindex("celery", 0)
        tag = json.loads(raw)["properties"]["delivery_tag"]
        popped = channel.pop_script(keys=["celery", "unacked_index", "unacked", "celery.inflight"],
                                    args=[',"","celery"]'], client=c)
        assert popped == [raw, tag.encode()]
        assert c.llen("celery") == 0 and not c.exists("celery.inflight")
        message, exchange, routing_key = json.loads(c.hget("unacked", tag))
        assert (message, exchange, routing_key) == (json.loads(raw), "", "celery")
        assert abs(c.zscore("unacked_index", tag) - time.time()) < 60
    assert channel.qos.restore_by_tag(tag) is True
    with azure_cache.client() as c:
        back = json.loads(c.lindex("celery", 0))
        assert back["headers"]["id"] == task_id and not c.exists("unacked")


def test_an_unacked_record_that_is_not_json_is_dead_lettered_by_the_sweep(azure_cache, channel):  # noqa: F811
    """The pop script records a message before Python reads it; if its worker dies then,
    a record that is not JSON is left for the sweep, which dead-letters it (kombu's raised)."""
    tag = str(uuid.uuid4())
    with azure_cache.client() as c:
        c.hset("unacked", tag, '[{"delivery_tag": "' + tag + '" not json,"","celery"]')
        c.zadd("unacked_index", {tag: time.time() - 60})
    assert channel.qos.restore_visible(num=None, interval=1) == 0
    with azure_cache.client() as c:
        assert not c.exists("unacked", "unacked_index", "celery")
        entry = json.loads(c.lindex("celery.dead_letter", 0))
    assert f"unacked record {tag!r} is not JSON" in entry["reason"]
    assert tag in entry["payload"]


def test_the_pop_script_takes_nothing_when_redis_refuses_its_first_write(redis_server):
    """At maxmemory (noeviction) the script's first write (ZADD) is refused: the message
    stays in the queue, nothing is recorded."""
    message = encode(variant(_an_envelope(), body=[[RECORD], {}, {}]))
    with redis_server.client() as c:
        c.lpush("q", message)
        script = c.register_script(_POP_AND_RECORD)
        c.config_set("maxmemory", "1")
        try:
            try:
                script(keys=["q", "unacked_index", "unacked", "q.inflight"], args=[',"","q"]'])
                raise AssertionError("Redis took the pop at maxmemory")
            except Exception as exc:  # redis.exceptions.OutOfMemoryError
                assert "OOM" in str(exc) or type(exc).__name__ == "OutOfMemoryError", exc
        finally:
            c.config_set("maxmemory", "0")
        assert c.lrange("q", 0, -1) == [message] and not c.exists("unacked", "unacked_index", "q.inflight")


def _an_envelope() -> dict:
    return {"body": "", "content-encoding": "utf-8", "content-type": "application/json",
            "headers": {"lang": "py", "task": "users.process", "id": str(uuid.uuid4())},
            "properties": {"delivery_info": {"exchange": "", "routing_key": "q"}, "priority": 0,
                           "body_encoding": None, "delivery_tag": str(uuid.uuid4())}}

