"""The producer CLI end to end against a real redis-server, plus its pacing logic."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from apps.producer.producer import Stop, run
from apps.producer.records import records
from tests.apps.redis_server import free_port
from tests.apps.worker.helpers import REPO, clean_env, wait_for

PY = sys.executable


def producer(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "apps.producer", *args], cwd=REPO, env=clean_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def test_count_sends_exactly_n_realistic_records(redis_server):
    env = {**redis_server.env, "CELERY_QUEUE": "burst"}
    out = producer(env, "--count", "300", "--rate", "0", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "sent 300 tasks" in out.stdout and "tasks/s" in out.stdout
    assert "it/s" not in out.stderr and "task/s]" not in out.stderr  # no tqdm bar without a TTY
    with redis_server.client() as c:
        assert c.llen("burst") == 300
        msg = json.loads(c.lindex("burst", 0))
    assert msg["headers"]["task"] == "users.process"
    args, kwargs, _ = json.loads(msg["body"])  # JSON text, not base64 (apps/producer/message.py)
    assert set(args[0]) == {"name", "email", "address"} and "@" in args[0]["email"]


def test_rate_is_respected(redis_server):
    out = producer(redis_server.env, "--count", "21", "--rate", "20")
    assert out.returncode == 0, out.stderr
    rate = float(out.stdout.split("(")[1].split()[0])
    assert 15 <= rate <= 21.5, out.stdout  # 20 intervals in >= 1 s
    with redis_server.client() as c:
        assert c.llen("celery") == 21


@pytest.mark.parametrize("args, message", [
    (["--count", "0", "--rate", "1"], "must be >= 1"),
    (["--count", "ten", "--rate", "1"], "not an integer"),
    (["--count", "5", "--rate", "-1"], "must be a finite number >= 0"),
    (["--count", "5"], "--rate"),
    (["--rate", "5"], "one of the arguments --count --forever --standby is required"),
    (["--standby", "--rate", "1"], "--standby takes no --rate"),
    (["--forever", "--rate", "1", "--wait-results", "10"], "--wait-results needs --count"),
    (["--forever", "--rate", "1", "--max-wait", "10"], "--max-wait needs --count"),
    (["--standby", "--max-wait", "10"], "--standby takes no --rate, --wait-results or --max-wait"),
    (["--count", "5", "--rate", "0", "--max-wait", "-1"], "must be a finite number of seconds > 0"),
    (["--count", "5", "--rate", "0", "--wait-results", "0"], "must be a finite number of seconds > 0"),
    (["--count", "5", "--forever", "--rate", "1"], "not allowed with"),
    (["--forever", "--rate", "0"], "--forever needs 0 < --rate <= 1000 tasks/s"),
    (["--forever", "--rate", "1e300"], "--forever needs 0 < --rate <= 1000 tasks/s"),
    (["--forever", "--rate", "1000.5"], "--forever needs 0 < --rate <= 1000 tasks/s"),
    (["--forever", "--rate", "inf"], "must be a finite number >= 0"),
    (["--count", "5", "--rate", "nan"], "must be a finite number >= 0"),
])
def test_bad_arguments_fail_clearly(args, message):
    out = producer({}, *args)
    assert out.returncode == 2
    assert message in out.stderr


def test_unreachable_redis_is_a_clear_error():
    """A burst waits --max-wait for Redis (a restart, a failover), then says what it could not do."""
    started = time.monotonic()
    out = producer({"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(free_port())},
                   "--count", "3", "--rate", "0", "--max-wait", "2")
    assert out.returncode == 1
    assert "cannot publish to Redis at 127.0.0.1" in out.stderr
    assert "): connection for " in out.stderr and "sent 0 of 3 tasks; the other 3 were not sent" in out.stderr
    assert 1.5 <= time.monotonic() - started < 30
    assert out.stderr.count("Redis unavailable") == 1  # one line for the episode, not one per attempt


def test_forever_mode_heartbeat_and_clean_sigterm(redis_server, tmp_path):
    hb = tmp_path / "producer-hb.json"
    # No /metrics: its default port (9809) is one per pod, not one per test machine.
    env = clean_env(**redis_server.env, PRODUCER_HEARTBEAT_FILE=str(hb), PRODUCER_HEARTBEAT_MAX_AGE="5",
                    PRODUCER_METRICS_PORT="0")
    proc = subprocess.Popen([PY, "-m", "apps.producer", "--forever", "--rate", "50"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        health = lambda: subprocess.run([PY, "-m", "apps.producer.healthcheck"], cwd=REPO, env=env,  # noqa: E731
                                        capture_output=True, timeout=30).returncode
        wait_for(hb.exists, 20, message="producer heartbeat")
        assert health() == 0
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    sent = int(out.split("sent ")[1].split()[0])
    with redis_server.client() as c:
        assert c.llen("celery") == sent >= 40
    hb.write_text(json.dumps({"ts": time.time() - 60, "sent": sent}))
    assert health() == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_pacing_follows_the_schedule_even_when_sends_are_slow():
    clock, sent_at = FakeClock(), []

    def send(batch):
        assert len(batch) == 1  # on schedule: one task a send
        sent_at.append(clock.now)
        clock.now += 0.03  # each send costs 30 ms
        return 1

    result = run(send, records(seed=1), 50, 10.0, clock=clock, sleep=clock.sleep)
    assert result.sent == 50
    assert all(abs(t - i / 10.0) < 1e-9 for i, t in enumerate(sent_at))  # never early, never drifting
    assert 4.9 <= result.seconds <= 5.0


def test_behind_the_schedule_every_due_task_goes_in_one_send_and_the_lag_stays_bounded():
    """A send that takes 200 ms (a distant Redis: one round trip) cannot carry 10 tasks/s one
    at a time: the lag grew by 0.1 s a task, without bound. Every task due by now goes in
    the next send (one pipeline), so the lag stays under one send and the rate holds; at
    30 ms a send it is 0 and each send carries one task."""
    for cost, bound in ((0.2, 0.2 + 1e-9), (0.03, 0.0)):
        clock, lags, sizes = FakeClock(), [], []

        def send(batch, cost=cost, clock=clock, sizes=sizes):
            sizes.append(len(batch))
            clock.now += cost
            return len(batch)

        result = run(send, records(seed=1), 40, 10.0, clock=clock, sleep=clock.sleep, lag=lags.append)
        assert result.sent == 40 and sum(sizes) == 40
        assert lags[0] == 0.0 and max(lags) <= bound, (cost, lags)
        assert result.seconds <= 40 / 10.0 + cost + 1e-9, result.seconds  # the rate holds
        assert (max(sizes) > 1) == (cost > 0.1), sizes


def test_an_unthrottled_burst_goes_in_batches_and_a_short_send_keeps_the_rest():
    got: list[list[dict]] = []

    def send(batch):
        got.append(batch)
        return 1 if len(got) == 2 else len(batch)  # the 2nd send takes only its first task

    result = run(send, records(seed=1), 150, 0.0, batch_max=64)
    assert result.sent == 150
    assert [len(b) for b in got] == [64, 64, 64, 21]  # 64 + 1 + 64 + 21
    assert got[2][:63] == got[1][1:]  # what was not sent goes first in the next send, in order
    assert got[0] == [r for r, _ in zip(records(seed=1), range(64), strict=False)]


def test_the_forever_producer_serves_its_lag(redis_server, tmp_path):
    """The Deployment's process (--forever) exports producer_schedule_lag_seconds."""
    import urllib.request

    port = free_port()
    env = {**redis_server.env, "PRODUCER_METRICS_PORT": str(port),
           "PRODUCER_HEARTBEAT_FILE": str(tmp_path / "heartbeat.json")}
    proc = subprocess.Popen([PY, "-m", "apps.producer", "--forever", "--rate", "5"], cwd=REPO,
                            env=clean_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def lag_served() -> str | None:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read().decode()
            except OSError:
                return None
            sent = [line for line in body.splitlines() if line.startswith("producer_tasks_sent_total ")]
            return body if sent and float(sent[0].split()[1]) >= 3 else None

        body = wait_for(lag_served, 20, interval=0.2, message="producer_schedule_lag_seconds on /metrics")
        lag = float(next(line.split()[1] for line in body.splitlines()
                         if line.startswith("producer_schedule_lag_seconds ")))
        assert 0.0 <= lag < 1.0  # a local Redis keeps 5 tasks/s easily
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_stop_ends_forever_mode():
    clock, stop, n = FakeClock(), Stop(), []

    def send(batch):
        n.append(1)
        if len(n) == 7:
            stop.requested = True
        return len(batch)

    result = run(send, records(seed=1), None, 100.0, stop=stop, clock=clock, sleep=clock.sleep)
    assert result.sent == 7


def test_seed_makes_records_reproducible():
    a, b, c = records(seed=5), records(seed=5), records(seed=6)
    first = [next(a) for _ in range(5)]
    assert first == [next(b) for _ in range(5)]
    assert first != [next(c) for _ in range(5)]


def test_progress_bar_in_a_terminal(redis_server):
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([PY, "-m", "apps.producer", "--count", "50", "--rate", "0"], cwd=REPO,
                            env=clean_env(**redis_server.env), stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    try:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        assert proc.wait(timeout=30) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "50/50" in text and "100%" in text  # tqdm's bar
    assert "sent 50 tasks" in text


def test_healthcheck_waiting_producer_is_live_not_ready(tmp_path):
    from apps.producer.healthcheck import check

    hb = tmp_path / "hb.json"
    hb.write_text(json.dumps({"ts": time.time(), "sent": 3,
                              "waiting": {"reason": "memory", "since": time.time() - 5, "attempts": 4}}))
    live, msg = check(hb, 30)
    assert live and "waiting for room in Redis (memory at the publish threshold) for 5s" in msg
    ready, msg = check(hb, 30, ready=True)
    assert not ready and msg.startswith("not ready")
    hb.write_text(json.dumps({"ts": time.time(), "sent": 3, "waiting": {"reason": "readonly"}}))
    assert "waiting for Redis (readonly)" in check(hb, 30, ready=True)[1]
    hb.write_text(json.dumps({"ts": time.time(), "sent": 3, "waiting": None}))
    assert check(hb, 30, ready=True)[0]


def test_bad_environment_is_a_clear_error_without_secrets():
    out = producer({"REDIS_PORT": "not-a-port", "REDIS_PASSWORD": "hunter2-secret"}, "--count", "1", "--rate", "0")
    assert out.returncode == 2
    assert "REDIS_PORT" in out.stderr
    assert "hunter2-secret" not in out.stderr + out.stdout


def test_healthcheck_bad_environment_names_the_variable_and_echoes_nothing():
    env = clean_env(REDIS_PORT="port-hunter2", REDIS_PASSWORD="hunter2-secret", PRODUCER_HEARTBEAT_MAX_AGE="")
    out = subprocess.run([PY, "-m", "apps.producer.healthcheck"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2
    assert "REDIS_PORT" in out.stderr
    assert "hunter2" not in out.stderr + out.stdout
    assert "input_value" not in out.stderr and "Traceback" not in out.stderr


def test_wait_results_confirms_every_task_processed_by_a_real_worker(redis_any, tmp_path):
    """On every Redis profile; RESULT_TTL_SECONDS (a day by default) outlives the wait."""
    from tests.apps.worker.helpers import Worker

    redis_server = redis_any
    env = {**redis_server.env, "WORK_SECONDS_MIN": "0", "WORK_SECONDS_MAX": "0"}
    worker = Worker(env, tmp_path / "workers", concurrency=2).start()
    try:
        out = producer(env, "--count", "40", "--rate", "0", "--wait-results", "60", timeout=90)
    finally:
        worker.kill()
        worker.close()
    assert out.returncode == 0, out.stderr
    assert "all 40 results present" in out.stdout
    with redis_server.client() as c:
        assert len(list(c.scan_iter("users:*"))) == 40


def test_wait_results_fails_naming_what_is_missing(redis_server):
    # No worker: nothing can be processed, so every result is missing when the bound runs out.
    out = producer(redis_server.env, "--count", "5", "--rate", "0", "--wait-results", "1.5")
    assert out.returncode == 1
    assert "5 of 5 results missing after 1.5s" in out.stderr
    with redis_server.client() as c:
        assert c.llen("celery") == 5  # nothing lost: still queued


def test_missing_results_sees_each_key(redis_server):
    from apps.producer.results import missing_results

    with redis_server.client() as c:
        c.hset("users:a", mapping={"name": "x"})
        c.hset("users:c", mapping={"name": "y"})
        assert missing_results(c, ["a", "b", "c", "d"], chunk=3) == ["b", "d"]


def test_standby_sends_nothing_keeps_heartbeat_and_stops_cleanly(redis_server, tmp_path):
    hb = tmp_path / "standby-hb.json"
    # No /metrics: its default port (9809) is one per pod; two test processes would collide on it.
    env = clean_env(**redis_server.env, PRODUCER_HEARTBEAT_FILE=str(hb), PRODUCER_HEARTBEAT_MAX_AGE="5",
                    PRODUCER_METRICS_PORT="0")
    proc = subprocess.Popen([PY, "-m", "apps.producer", "--standby"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(hb.exists, 20, message="standby heartbeat")
        health = subprocess.run([PY, "-m", "apps.producer.healthcheck"], cwd=REPO, env=env,
                                capture_output=True, timeout=30)
        assert health.returncode == 0, health.stderr
        first = json.loads(hb.read_text())["ts"]
        wait_for(lambda: json.loads(hb.read_text())["ts"] > first, 15, message="heartbeat refresh")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with redis_server.client() as c:
        assert c.llen("celery") == 0


def test_a_metrics_port_in_use_is_a_clear_error_not_a_traceback(redis_server, tmp_path):
    """Two producers on one network namespace (or a port some other process holds): exit 2
    naming the port and its variable, instead of dying in prometheus_client's traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(**redis_server.env, PRODUCER_METRICS_PORT=str(port),
                        PRODUCER_HEARTBEAT_FILE=str(tmp_path / "hb.json"))
        out = subprocess.run([PY, "-m", "apps.producer", "--standby"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out.stderr
    assert f"cannot serve /metrics on port {port} (PRODUCER_METRICS_PORT)" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("count", [256])
def test_a_burst_is_pipelined_in_order_on_every_redis_profile(redis_any, count):
    """Unpipelined, each task was one round trip (256 tasks: 256 writes to Redis, 2.6 tasks/s
    at 200 ms a hop). Now due tasks go as one pipeline of LPUSHes (kombu's publish batch):
    the writes from the producer to Redis are a handful, every task arrives once, in order."""
    from tests.apps.tcp_proxy import TcpProxy

    proxy = TcpProxy(redis_any.port).start()
    try:
        env = {**redis_any.env, "REDIS_PORT": str(proxy.port), "CELERY_QUEUE": "piped"}
        out = producer(env, "--count", str(count), "--rate", "0", "--seed", "4")
        assert out.returncode == 0, out.stderr
        writes = proxy.client_chunks
    finally:
        proxy.stop()
    with redis_any.client() as c:
        assert c.llen("piped") == count
        ids = [json.loads(m)["headers"]["id"] for m in reversed(c.lrange("piped", 0, -1))]
    assert len(set(ids)) == count  # each task once
    # TLS splits a 90 kB pipeline into 16 kB records, which the proxy reads one by one.
    assert writes < count / 4, f"{writes} writes to Redis for {count} tasks: not pipelined"
    print(f"{count} tasks in {writes} writes to Redis")


def test_a_queued_task_carries_the_record_once_and_no_personal_data_in_its_headers(redis_server):
    """Celery's default ``argsrepr`` repeated the whole user record in the headers (name,
    e-mail, address: about 110 bytes of every queued task, shown by ``celery inspect`` and
    task events). The body alone carries it now, as JSON text; the headers hold only what
    says something, and no property repeats the task id (apps/producer/message.py)."""
    from apps.producer.settings import ARGSREPR

    env = {**redis_server.env, "CELERY_QUEUE": "lean"}
    out = producer(env, "--count", "3", "--rate", "0", "--seed", "7")
    assert out.returncode == 0, out.stderr
    expected = [r for r, _ in zip(records(7), range(3), strict=False)]
    with redis_server.client() as c:
        messages = [json.loads(m) for m in reversed(c.lrange("lean", 0, -1))]
    assert len(messages) == 3
    for message, record in zip(messages, expected, strict=True):
        assert message["headers"]["argsrepr"] == ARGSREPR
        headers = json.dumps(message["headers"])
        assert record["email"] not in headers and record["name"] not in headers
        assert json.loads(message["body"]) == [[record], {}, {}]  # the record is the argument
        assert set(message["headers"]) == {"lang", "task", "id", "argsrepr"}
        assert message["properties"]["body_encoding"] is None
        assert "correlation_id" not in message["properties"] and "reply_to" not in message["properties"]
        assert len(json.dumps(message)) < 600  # Celery's send_task: about 1,130 characters


def test_lean_headers_keep_every_field_that_says_something():
    """Only Celery's defaults go: a retry count, an ETA, a time limit, a parent or a root
    other than the task itself stay, so a message that carries them means the same."""
    from apps.producer.message import lean_headers

    celery = {"lang": "py", "task": "users.process", "id": "t1", "shadow": None, "eta": None, "expires": None,
              "group": None, "group_index": None, "retries": 0, "timelimit": [None, None], "root_id": "t1",
              "parent_id": None, "argsrepr": "(<user record>,)", "kwargsrepr": "{}", "origin": "gen1@host",
              "ignore_result": False, "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}}
    assert lean_headers(celery) == {"lang": "py", "task": "users.process", "id": "t1",
                                    "argsrepr": "(<user record>,)"}
    said = {**celery, "retries": 2, "eta": "2026-12-06T10:00:00+00:00", "timelimit": [30, None],
            "root_id": "t0", "parent_id": "t0", "ignore_result": True, "stamps": {"a": 1}}
    kept = lean_headers(said)
    assert {k: kept[k] for k in ("retries", "eta", "timelimit", "root_id", "parent_id", "ignore_result", "stamps")} \
        == {k: said[k] for k in ("retries", "eta", "timelimit", "root_id", "parent_id", "ignore_result", "stamps")}


def test_the_lean_message_keeps_a_workflow_part_that_holds_something():
    """The producer sends no workflows, but a caller of its app that adds a callback keeps it."""
    import os
    from unittest import mock

    from apps.producer.message import LeanAMQP
    from apps.producer.producer import build_app
    from apps.producer.settings import ProducerSettings

    with mock.patch.dict(os.environ, {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6379"}, clear=True):
        app = build_app(ProducerSettings())
    assert isinstance(app.amqp, LeanAMQP)
    plain = app.amqp.as_task_v2("t1", "users.process", args=[{"a": 1}])
    assert plain.body == ([{"a": 1}], {}, {}) and plain.properties == {}
    chained = app.amqp.as_task_v2("t2", "users.process", args=[{"a": 1}], callbacks=[{"task": "next"}])
    assert chained.body[2] == {"callbacks": [{"task": "next"}]}
