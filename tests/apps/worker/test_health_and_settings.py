"""Liveness check, settings validation and the TLS/URL rules (fast, no worker process
except the one live liveness test)."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from unittest import mock

import pytest
from pydantic import ValidationError

from apps.worker.healthcheck import STUCK_GRACE_SECONDS, check
from apps.worker.settings import TASK_NAME, WorkerSettings
from tests.apps.worker.helpers import REPO, clean_env, wait_for
from tests.apps.worker.test_worker import env_for


def beat(path, **fields):
    path.write_text(json.dumps({"ts": time.time(), "active": 0, "oldest_active_seconds": 0.0,
                                "task_time_limit": 15, **fields}))
    return path


def test_check_fresh_heartbeat_is_healthy(tmp_path):
    ok, msg = check(beat(tmp_path / "hb"), max_age=30)
    assert ok, msg


def test_check_missing_stale_or_garbage_is_unhealthy(tmp_path):
    assert check(tmp_path / "none", 30)[0] is False
    assert check(beat(tmp_path / "old", ts=time.time() - 31), 30)[0] is False
    (tmp_path / "bad").write_text("{not json")
    assert check(tmp_path / "bad", 30)[0] is False


def test_check_task_running_past_hard_limit_is_stuck(tmp_path):
    ok, msg = check(beat(tmp_path / "hb", active=1, oldest_active_seconds=15 + STUCK_GRACE_SECONDS + 1), 30)
    assert not ok and "stuck" in msg
    assert check(beat(tmp_path / "hb2", active=1, oldest_active_seconds=14), 30)[0]


def test_a_tasks_time_stops_counting_while_the_worker_waits_for_redis(tmp_path):
    """The beat's age is added to a running task's time, except while the worker waits for
    Redis (its main loop cannot take the result then): 20 s old, the task at 14 s."""
    old = time.time() - 20
    running = beat(tmp_path / "hb", ts=old, active=1, oldest_active_seconds=14 + STUCK_GRACE_SECONDS - 10)
    assert not check(running, 30)[0]
    waiting = beat(tmp_path / "hb2", ts=old, active=1, oldest_active_seconds=14 + STUCK_GRACE_SECONDS - 10,
                   waiting_for_redis={"reason": "connection", "since": old - 5, "attempts": 3, "detail": ""})
    ok, msg = check(waiting, 30)
    assert ok, msg


def test_the_heartbeat_counts_a_tasks_time_only_until_a_wait_for_redis_began(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from apps.worker import runtime

    now = time.time()
    monkeypatch.setattr(runtime.state, "active_requests", [SimpleNamespace(time_start=now - 50)])
    monkeypatch.setattr(runtime.WAIT, "status", lambda: {"reason": "connection", "since": now - 45,
                                                         "attempts": 9, "detail": ""})
    with mock.patch.dict(os.environ, clean_env(WORK_SECONDS_MAX="4"), clear=True):
        settings = WorkerSettings()
    written = runtime.write_heartbeat(tmp_path / "hb", settings, now=now)
    assert written["oldest_active_seconds"] == pytest.approx(5.0)


def test_waiting_for_redis_is_live_but_not_ready(tmp_path):
    waiting = {"reason": "oom", "since": time.time() - 42, "attempts": 9, "detail": "OutOfMemoryError: ..."}
    hb = beat(tmp_path / "hb", waiting_for_redis=waiting)
    live, msg = check(hb, 30)
    assert live and "waiting for Redis (oom) for 42s, 9 failed attempts" in msg
    ready, msg = check(hb, 30, ready=True)
    assert not ready and msg.startswith("not ready: waiting for Redis (oom)")
    assert check(beat(tmp_path / "ok", waiting_for_redis=None), 30, ready=True)[0]
    # stale stays stale, waiting or not: a waiting worker must keep beating
    assert not check(beat(tmp_path / "old", ts=time.time() - 31, waiting_for_redis=waiting), 30)[0]


def test_healthcheck_cli_ready_flag(tmp_path):
    hb = beat(tmp_path / "hb", waiting_for_redis={"reason": "loading", "since": time.time(), "attempts": 1})
    env = clean_env(WORKER_HEARTBEAT_FILE=str(hb))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "apps.worker.healthcheck", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=30)

    assert run().returncode == 0
    ready = run("--ready")
    assert ready.returncode == 1 and "waiting for Redis (loading)" in ready.stderr
    assert run("--readiness").returncode == 2  # a typo in a probe fails loudly, it is not liveness


def test_liveness_follows_the_real_worker(redis_server, workers):
    env = env_for(redis_server, WORKER_HEARTBEAT_INTERVAL=0.5, WORKER_HEARTBEAT_MAX_AGE=2)
    worker = workers(env).wait_ready()

    def probe() -> int:
        return subprocess.run([sys.executable, "-m", "apps.worker.healthcheck"],
                              cwd=REPO, env=clean_env(**worker.env), capture_output=True,
                              timeout=30).returncode

    time.sleep(2.5)  # several heartbeat periods: the timer keeps the file fresh
    assert probe() == 0
    worker.kill()
    wait_for(lambda: probe() == 1, 10, interval=0.5, message="unhealthy after SIGKILL")


def test_settings_defaults_and_derived_values(monkeypatch):
    for k in ("REDIS_TLS", "REDIS_CA_FILE", "CELERY_QUEUE", "WORK_SECONDS_MAX", "WORK_SECONDS_MIN",
              "CELERY_VISIBILITY_TIMEOUT", "CELERY_DEAD_LETTER_QUEUE"):
        monkeypatch.delenv(k, raising=False)
    s = WorkerSettings()
    assert (s.celery_queue, s.work_seconds_min, s.work_seconds_max) == ("celery", 1, 10)
    assert s.dead_letter_queue == "celery.dead_letter"
    assert s.task_time_limit == 15 and s.task_soft_time_limit == 12
    assert s.celery_visibility_timeout > s.task_time_limit
    assert s.restore_interval == 6
    assert (s.result_ttl_seconds, s.dead_letter_max_length, s.dead_letter_max_entry_bytes) == (86400, 1000, 16384)
    assert s.dead_letters.key == "celery.dead_letter" and s.dead_letters.max_length == 1000
    assert TASK_NAME == "users.process"


@pytest.mark.parametrize("env, field", [
    ({"WORK_SECONDS_MAX": "60", "CELERY_VISIBILITY_TIMEOUT": "60"}, "CELERY_VISIBILITY_TIMEOUT"),
    ({"WORK_SECONDS_MIN": "5", "WORK_SECONDS_MAX": "2"}, "WORK_SECONDS_MIN"),
    ({"CELERY_QUEUE": "a,b"}, "CELERY_QUEUE"),
    ({"REDIS_CA_FILE": "/nonexistent/ca.pem"}, "REDIS_CA_FILE"),
    ({"REDIS_TLS": "maybe"}, "redis_tls"),
    ({"CELERY_DEAD_LETTER_QUEUE": "celery"}, "CELERY_DEAD_LETTER_QUEUE"),
    ({"WORKER_HEARTBEAT_INTERVAL": "20"}, "WORKER_HEARTBEAT_MAX_AGE"),
    ({"RESULT_TTL_SECONDS": "0"}, "result_ttl_seconds"),
    ({"DEAD_LETTER_MAX_LENGTH": "0"}, "dead_letter_max_length"),
    ({"DEAD_LETTER_MAX_ENTRY_BYTES": "100"}, "dead_letter_max_entry_bytes"),
    ({"CELERY_VISIBILITY_TIMEOUT": "inf"}, "celery_visibility_timeout"),
])
def test_settings_reject_bad_values_naming_the_variable(monkeypatch, env, field):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValidationError) as err:
        WorkerSettings()
    assert field in str(err.value)


def test_empty_optional_variables_mean_unset(monkeypatch):
    for name in ("WORKER_IDLE_EXIT_SECONDS", "REDIS_CA_FILE", "RESULT_TTL_SECONDS", "DEAD_LETTER_MAX_LENGTH",
                 "WORKER_HEARTBEAT_MAX_AGE", "WORKER_HEARTBEAT_FILE"):
        monkeypatch.setenv(name, "")
    s = WorkerSettings()
    assert s.worker_idle_exit_seconds is None and s.redis_ca_file is None
    assert (s.result_ttl_seconds, s.dead_letter_max_length, s.worker_heartbeat_max_age) == (86400, 1000, 30)


def _healthcheck(**env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "apps.worker.healthcheck"], cwd=REPO, env=clean_env(**env),
                          capture_output=True, text=True, timeout=30)


def test_healthcheck_empty_means_unset_and_bad_values_are_named_not_echoed(tmp_path):
    hb = beat(tmp_path / "hb.json")
    ok = _healthcheck(WORKER_HEARTBEAT_FILE=str(hb), WORKER_HEARTBEAT_MAX_AGE="", WORKER_HEARTBEAT_INTERVAL="")
    assert ok.returncode == 0, ok.stderr
    assert "ok: heartbeat" in ok.stdout
    bad = _healthcheck(WORKER_HEARTBEAT_FILE=str(hb), WORKER_HEARTBEAT_MAX_AGE="thirty-s3cr3t",
                       REDIS_PASSWORD="hunter2-secret")
    assert bad.returncode == 2
    assert "WORKER_HEARTBEAT_MAX_AGE" in bad.stderr
    assert "thirty-s3cr3t" not in bad.stderr + bad.stdout and "hunter2" not in bad.stderr + bad.stdout
    assert "input_value" not in bad.stderr and "Traceback" not in bad.stderr


def test_tls_options_verify_and_url_carries_none(monkeypatch, tls_files):
    monkeypatch.setenv("REDIS_TLS", "true")
    monkeypatch.setenv("REDIS_PASSWORD", "p@ss/w:rd")
    monkeypatch.setenv("REDIS_CA_FILE", str(tls_files.ca))
    s = WorkerSettings()
    assert s.redis_url.startswith("rediss://") and "?" not in s.redis_url
    # The credential is not in the URL: kombu's connections ask the provider for it.
    assert "p%40ss" not in s.redis_url and "p@ss" not in s.redis_url
    assert s.credentials().get_credentials() == ("p@ss/w:rd",)
    opts = s.ssl_options()
    assert opts["ssl_cert_reqs"] == ssl.CERT_REQUIRED and opts["ssl_ca_certs"] == str(tls_files.ca)
    from apps.worker.celery_app import celery_config

    conf = celery_config(s)
    assert conf["broker_use_ssl"] == opts and "ssl" not in conf["broker_url"]
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["unacked_restore_throttle"] == 1
    assert conf["broker_transport_options"]["priority_steps"] == [0]


def test_producer_and_worker_agree_on_task_name_and_record_shape():
    from apps.producer.records import records
    from apps.producer.settings import TASK_NAME as PRODUCER_TASK_NAME
    from apps.worker.users import parse_record

    assert PRODUCER_TASK_NAME == TASK_NAME
    gen = records(seed=7)
    for _ in range(200):
        parse_record([next(gen)], {})


def test_a_metrics_port_in_use_is_one_line_not_a_traceback(redis_server, tmp_path):
    """As the producer: exit 2 naming the port and its variable (it died in Celery's traceback)."""
    import socket

    from tests.apps.worker.helpers import CELERY

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(**env_for(redis_server), WORKER_METRICS_PORT=str(port),
                        WORKER_HEARTBEAT_FILE=str(tmp_path / "hb.json"))
        out = subprocess.run([CELERY, "-A", "apps.worker.celery_app", "worker"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"worker: cannot serve /metrics on port {port} (WORKER_METRICS_PORT)" in out.stderr
    assert "Traceback" not in out.stderr
