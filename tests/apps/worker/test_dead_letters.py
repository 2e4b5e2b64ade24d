"""Malformed messages never stop the worker: each one is dead-lettered with its reason and
acked, at whatever stage it is caught (transport, Celery's protocol parsing, the task),
and the good tasks behind it run. Real Redis, one real worker per test."""

from __future__ import annotations

import base64
import json
import pickle
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.apps.redis_server import free_port
from tests.apps.worker.envelopes import RECORD, Bad, body_of, corpus, encode, real_envelope, variant
from tests.apps.worker.helpers import wait_for
from tests.apps.worker.test_worker import env_for, metric_sum, user_keys


def _run(server, send, workers, env: dict, bad: list[bytes], good: int, queue: str = "celery",
         timeout: float = 60, dead_letters: int | None = None) -> tuple[list[str], list[dict]]:
    """Bad messages in front of (and between) good tasks, then one worker: returns the good
    ids and the dead-letter entries, once every good task is done, the queue is drained and
    ``dead_letters`` (default: one per bad message) entries are there."""
    ids: list[str] = []
    per_good = max(1, len(bad) // max(good, 1))
    with server.client() as c:
        pending = list(bad)
        while pending or len(ids) < good:
            for raw in pending[:per_good]:
                c.lpush(queue, raw)  # LPUSH like kombu: the worker pops from the other end
            pending = pending[per_good:]
            if len(ids) < good:
                ids.append(send(env, RECORD))
    worker = workers(env).wait_ready()
    dead = f"{queue}.dead_letter"
    expected = len(bad) if dead_letters is None else dead_letters

    def finished() -> bool:
        return (all(c.exists(f"users:{i}") for i in ids) and c.llen(queue) == 0 and c.llen(dead) >= expected
                and not c.exists("unacked", f"{queue}.inflight"))

    with server.client() as c:
        wait_for(lambda: finished() or not worker.alive(), timeout, interval=0.2,
                 message=f"{good} good tasks and {expected} dead letters")
        assert worker.alive(), worker.log()[-3000:]
        entries = [json.loads(e) for e in c.lrange(dead, 0, -1)]
    log = worker.log()
    assert "Unrecoverable error" not in log and "Connection to broker lost" not in log, log[-3000:]
    return ids, entries


def test_corpus_of_malformed_messages(redis_any, send, workers):
    """The malformed shapes (envelopes.py) in front of 20 good tasks, on every Redis profile."""
    port = free_port()
    env = env_for(redis_any, WORKER_METRICS_PORT=port)
    cases: list[Bad] = corpus(real_envelope(redis_any, send, env, "celery"))
    send(env, RECORD, serializer="pickle")  # a real pickled task: refused, kept replayable
    ids, entries = _run(redis_any, send, workers, env, [b.raw for b in cases], good=20)
    assert len(entries) == len(cases) + 1
    reasons = [e["reason"] for e in entries]
    for case in cases:
        matching = [e for e in entries if case.reason in e["reason"]]
        assert matching, f"{case.label}: no dead letter with {case.reason!r} in {reasons}"
        assert {e["stage"] for e in matching} >= {case.stage}, (case.label, matching)
    assert all(e["payload"] and e["truncated"] is False for e in entries)
    pickled = next(e["payload"] for e in entries if isinstance(e["payload"], dict)
                   and "body_base64" in e["payload"])
    assert pickled["content_type"] == "application/x-python-serialize"
    assert pickle.loads(base64.b64decode(pickled["body_base64"]))[0] == [RECORD]  # replayable
    with redis_any.client() as c:
        assert len(user_keys(c)) == 20
    assert wait_for(lambda: metric_sum(port, "celery_dead_lettered_total") == len(cases) + 1, 10,
                    message="dead-letter metric")
    assert metric_sum(port, "celery_tasks_succeeded_total") == 20


# ---- property-based: envelopes broken one field at a time ---------------------------------------
_junk = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                  st.text(max_size=8), st.lists(st.integers(), max_size=3),
                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_not_str = _junk.filter(lambda v: not isinstance(v, str))
_not_list = _junk.filter(lambda v: not isinstance(v, list))
_not_dict = _junk.filter(lambda v: not isinstance(v, dict))
_not_iso = st.text(alphabet="xyz!? ", min_size=1, max_size=10)
_bad_limit = st.one_of(st.text(max_size=5), st.booleans(), st.integers(max_value=-1),
                       st.lists(st.integers(min_value=0, max_value=5), min_size=3, max_size=4),
                       st.lists(st.integers(min_value=0, max_value=5), max_size=1),
                       st.tuples(st.text(max_size=3), st.none()).map(list),
                       st.tuples(st.none(), st.floats(max_value=-0.1)).map(list))
_bad_header = st.one_of(
    st.tuples(st.just("id"), st.one_of(_not_str, st.just(""))),
    st.tuples(st.just("task"), st.one_of(_not_str, st.just(""))),
    st.tuples(st.just("timelimit"), _bad_limit),
    st.tuples(st.just("retries"), st.one_of(st.integers(max_value=-1), st.text(max_size=4), st.booleans(),
                                            st.floats())),
    st.tuples(st.sampled_from(["eta", "expires"]), st.one_of(_not_iso, st.integers(), st.booleans())),
    st.tuples(st.sampled_from(["shadow", "root_id", "parent_id", "group", "argsrepr", "origin"]),
              _not_str.filter(lambda v: v is not None)),
)


@st.composite
def broken(draw, envelope: dict) -> dict:
    """One envelope with exactly one thing wrong (every branch is invalid by construction)."""
    args, kwargs, embed = body_of(envelope)
    kind = draw(st.sampled_from(["header", "missing", "body", "args", "kwargs", "embed", "record"]))
    if kind == "header":
        name, value = draw(_bad_header)
        return variant(envelope, headers={name: value})
    if kind == "missing":
        return variant(envelope, drop=(draw(st.sampled_from(["id", "task"])),))
    if kind == "body":
        return variant(envelope, body=draw(st.one_of(
            _not_list, st.lists(st.integers(), max_size=5).filter(lambda v: len(v) != 3),
            st.just([[args, kwargs, embed]]))))
    if kind == "args":
        return variant(envelope, body=[draw(_not_list), kwargs, embed])
    if kind == "kwargs":
        return variant(envelope, body=[args, draw(_not_dict), embed])
    if kind == "embed":
        return variant(envelope, body=[args, kwargs, draw(st.one_of(
            _not_dict.filter(lambda v: v is not None),
            st.fixed_dictionaries({"callbacks": st.lists(st.just({"task": "x"}), min_size=1, max_size=2)})))])
    record = draw(st.one_of(st.text(max_size=10), st.integers(),
                            st.fixed_dictionaries({"name": st.just(""), "email": st.just("a@b.c"),
                                                   "address": st.just("x")}),
                            st.fixed_dictionaries({**{k: st.just(v) for k, v in RECORD.items()},
                                                   "extra": st.text(max_size=3)})))
    return variant(envelope, body=[[record], {}, embed])


def generate(envelope: dict, n: int) -> list[bytes]:
    """``n`` deterministic examples (derandomized, no example database)."""
    found: dict[bytes, None] = {}

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def collect(data):
        found[encode(data.draw(broken(envelope)))] = None

    collect()
    return list(found)


def test_property_envelopes_broken_one_field_at_a_time(redis_factory, send, workers):
    """Hypothesis breaks one field of a real envelope at a time (60 deterministic examples);
    all of them, between 10 good tasks, to one worker on the Azure Cache for Redis profile."""
    server = redis_factory(profile="azure-cache")
    env = env_for(server)
    bad = generate(real_envelope(server, send, env, "celery"), 60)
    assert len(bad) >= 40
    ids, entries = _run(server, send, workers, env, bad, good=10, timeout=90)
    assert len(entries) == len(bad), [e["reason"] for e in entries]
    assert {e["stage"] for e in entries} <= {"consumer", "task"}
    assert all(e["reason"] for e in entries)
    with server.client() as c:
        assert len(user_keys(c)) == 10


# ---- bounds: results expire, the dead-letter list and its entries are capped --------------------
def test_dead_letter_list_is_capped_and_results_expire(redis_factory, send, workers):
    """DEAD_LETTER_MAX_LENGTH=5 and 8 bad messages: the newest 5 stay; RESULT_TTL_SECONDS on
    every result right after the write."""
    server = redis_factory(profile="azure-cache")
    cap, port = 5, free_port()
    env = env_for(server, DEAD_LETTER_MAX_LENGTH=cap, RESULT_TTL_SECONDS=120, WORKER_METRICS_PORT=port)
    envelope = real_envelope(server, send, env, "celery")
    bad = [encode(variant(envelope, body=42)) for _ in range(cap + 3)]
    ids, entries = _run(server, send, workers, env, bad, good=3, dead_letters=cap)
    assert wait_for(lambda: metric_sum(port, "celery_dead_lettered_total") == cap + 3, 10,
                    message="all 8 dead-lettered")
    assert len(entries) == cap
    with server.client() as c:
        assert c.llen("celery.dead_letter") == cap
        assert all(100 <= c.ttl(f"users:{i}") <= 120 for i in ids)


def test_big_bad_task_leaves_a_bounded_entry_with_its_size(redis_factory, send, workers):
    server = redis_factory(profile="azure-cache")
    env = env_for(server)  # default bound: 16384 bytes
    big = {**RECORD, "name": "x" * (1024 * 1024)}
    task = send(env, big)
    good = send(env, RECORD)
    workers(env).wait_ready()
    with server.client() as c:
        wait_for(lambda: c.exists(f"users:{good}") and c.llen("celery.dead_letter") == 1, 60,
                 message="big task dead-lettered")
        raw = c.lindex("celery.dead_letter", 0)
        assert 0 < c.ttl(f"users:{good}") <= 86400
    assert len(raw) <= 16384
    entry = json.loads(raw)
    assert entry["truncated"] is True and entry["task_id"] == task and entry["stage"] == "task"
    assert entry["payload_bytes"] > 1024 * 1024
    assert entry["payload"].startswith('{"args":[{"name":"xxx')
    assert "name" in entry["reason"]


def test_dead_letters_class_against_real_redis(redis_any):
    """The one writer (apps/worker/dead_letters.py) over TCP, like the apps: LPUSH + LTRIM in
    MULTI/EXEC, cut entries that say so, escaping and multi-byte text included."""
    import redis

    from apps.worker.dead_letters import DeadLetters

    dl = DeadLetters(f"dl-{uuid.uuid4().hex[:6]}", max_length=3, max_entry_bytes=4096)
    client = redis.Redis(**redis_any.tcp_client_kwargs())
    try:
        for i in range(5):
            dl.push(client, f"reason {i}", {"i": i}, stage="test")
        with redis_any.client() as c:
            assert [json.loads(e)["payload"]["i"] for e in c.lrange(dl.key, 0, -1)] == [4, 3, 2]
        for payload in ('"\\' * 5000, "é" * 5000, {"k": ["\n" * 3000]}):
            dl.push(client, "r" * 3000, payload, task_id="t" * 1000)
            with redis_any.client() as c:
                raw = c.lindex(dl.key, 0)
            entry = json.loads(raw)
            assert len(raw) <= 4096 and entry["truncated"] is True
            assert entry["reason_bytes"] == 3000 and len(entry["task_id"]) == 256
            assert entry["payload_bytes"] == len((payload if isinstance(payload, str)
                                                  else json.dumps(payload, separators=(",", ":"))).encode())
            assert len(entry["payload"]) > 500  # cut to fit, not dropped
    finally:
        client.close()
