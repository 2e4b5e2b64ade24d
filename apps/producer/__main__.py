"""``python -m apps.producer --count N --rate R [--wait-results S] [--max-wait S]``,
``--forever --rate R`` or ``--standby``.

Exit codes: 0 done; 1 Redis could not be reached or refused for ``--max-wait`` seconds (or
results missing after ``--wait-results``); 2 bad arguments or environment; 3 Redis's memory
stayed at the publish threshold for ``--max-wait`` seconds (backpressure: the tasks not sent
are named; none is half-sent)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

#: The flood guard: the most tasks per second an endless (--forever) stream may send. An
#: unthrottled or near-unthrottled endless stream fills Redis faster than workers drain it;
#: bursts above this go through --count, which is bounded by its count.
MAX_FOREVER_RATE = 1000.0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _finite_number(text: str, *, positive: bool, rule: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value == float("inf") or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
    return value


def _seconds(text: str) -> float:
    return _finite_number(text, positive=True, rule="a finite number of seconds > 0")


#: How long a burst waits, at one stretch, for room in Redis or for Redis itself.
DEFAULT_MAX_WAIT = 60.0


def _rate(text: str) -> float:
    return _finite_number(text, positive=False, rule="a finite number >= 0 (0 = as fast as possible)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m apps.producer",
        description="Submit random user records as Celery tasks to CELERY_QUEUE.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--count", type=_positive_int, help="send this many tasks, then exit")
    mode.add_argument("--forever", action="store_true",
                      help="send until SIGTERM (the Deployment mode); needs "
                           f"0 < --rate <= {MAX_FOREVER_RATE:g}")
    mode.add_argument("--standby", action="store_true",
                      help="send nothing, stay up (heartbeat) until SIGTERM: the Deployment when "
                           "producerRate is 0, a place to run bursts from with kubectl exec")
    parser.add_argument("--rate", type=_rate, default=None,
                        help="tasks per second; 0 = as fast as possible (--count only)")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible records")
    parser.add_argument("--wait-results", type=_seconds, default=None, metavar="SECONDS",
                        help="--count only: then wait up to SECONDS until every task's result hash "
                             "users:<task id> exists; exit 1 naming how many are missing")
    parser.add_argument("--max-wait", type=_seconds, default=None, metavar="SECONDS",
                        help=f"--count only: the longest the burst waits, at one stretch, for room in Redis "
                             f"(backpressure) or for Redis itself, then exits 3 or 1 naming the limit "
                             f"(default {DEFAULT_MAX_WAIT:g}); --forever waits as long as it takes")
    args = parser.parse_args(argv)
    if args.standby:
        if args.rate is not None or args.wait_results is not None or args.max_wait is not None:
            parser.error("--standby takes no --rate, --wait-results or --max-wait (it sends nothing)")
        return args
    if args.rate is None:
        parser.error("the following arguments are required: --rate")
    if args.forever and not 0 < args.rate <= MAX_FOREVER_RATE:
        parser.error(f"--forever needs 0 < --rate <= {MAX_FOREVER_RATE:g} tasks/s (an endless stream "
                     "faster than that would flood Redis; send bursts with --count)")
    if args.forever and args.wait_results is not None:
        parser.error("--wait-results needs --count (forever mode never finishes sending)")
    if args.forever and args.max_wait is not None:
        parser.error("--max-wait needs --count (forever mode waits for Redis as long as it takes)")
    if args.max_wait is None and args.count is not None:
        args.max_wait = DEFAULT_MAX_WAIT
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from apps.common.config_errors import load_settings
    from apps.producer import metrics
    from apps.producer.producer import Stop, standby, write_heartbeat
    from apps.producer.publisher import NotPublished
    from apps.producer.settings import ProducerSettings

    try:
        # Variables and messages only: never the values (REDIS_PASSWORD).
        settings = load_settings(ProducerSettings, "producer")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2

    stop = Stop()
    if args.forever or args.standby:
        # Only the long-running process serves /metrics (a --count burst would collide on the port).
        try:
            metrics.serve(settings.producer_metrics_port)
        except OSError as exc:
            print(f"producer: cannot serve /metrics on port {settings.producer_metrics_port} "
                  f"(PRODUCER_METRICS_PORT): {exc.strerror or exc}", file=sys.stderr)
            return 2
    if args.standby:
        stop.install()
        standby(stop, lambda: write_heartbeat(settings.producer_heartbeat_file, 0))
        print("producer: standby ended")
        return 0

    try:
        result, sent_ids = _publish(settings, args, stop)
    except NotPublished as exc:
        metrics.PUBLISH_ERRORS.inc()
        rest = f"sent {exc.sent} of {args.count} tasks; the other {args.count - exc.sent} were not sent"
        if exc.reason == "memory":
            print(f"producer: Redis's memory stayed at the publish threshold for {exc.waited:.0f}s "
                  f"(queue {settings.celery_queue!r}; {exc.detail}): {rest}", file=sys.stderr)
            return 3
        print(f"producer: cannot publish to Redis at {settings.redis_host}:{settings.redis_port} "
              f"(queue {settings.celery_queue!r}): {exc.reason} for {exc.waited:.0f}s: {exc.detail}: {rest}",
              file=sys.stderr)
        return 1
    queue = settings.celery_queue
    msg = (f"sent {result.sent} tasks to queue {queue!r} in {result.seconds:.2f}s "
           f"({result.rate:.1f} tasks/s)")
    print(msg)
    if args.wait_results is not None:
        return _wait_results(settings, sent_ids, args.wait_results)
    return 0


def _publish(settings, args: argparse.Namespace, stop):
    """Send the records (``--count`` or ``--forever``); ``(RunResult, ids sent)``. Raises
    :class:`NotPublished` (with ``sent``) when a burst waited ``--max-wait`` for one task."""
    from apps.producer import metrics
    from apps.producer.admission import Admission
    from apps.producer.producer import build_app, is_tty, make_progress, run, write_heartbeat
    from apps.producer.publisher import NotPublished, Publisher
    from apps.producer.records import records
    from apps.producer.results import redis_client
    from apps.producer.settings import TASK_NAME

    app = build_app(settings)
    if args.forever:
        stop.install()
    sent_ids: list[str] = []
    state: dict[str, Any] = {"sent": 0, "beat": float("-inf")}
    update, close = make_progress(args.count, tty=is_tty())

    def beat(n: int | None = None) -> None:
        if n is not None:
            state["sent"] = n
        write_heartbeat(settings.producer_heartbeat_file, state["sent"], publisher.waiting)

    def beat_while_waiting() -> None:  # forever mode: live (and not ready) while it waits
        if args.forever and time.monotonic() - state["beat"] >= 1.0:
            state["beat"] = time.monotonic()
            beat()

    with redis_client(settings) as info, app.producer_or_acquire() as producer:  # INFO: one connection
        admission = Admission(lambda: info.info("memory"), settings.redis_maxmemory_bytes,
                              settings.publish_max_memory_percent)
        def publish(items: list[tuple[dict, str]]) -> None:
            # kombu's publish batch: the LPUSHes in one pipeline, one round trip (publisher.py).
            with producer.batch(max_size=max(1, len(items))):
                for record, task_id in items:
                    app.send_task(TASK_NAME, args=[record], queue=settings.celery_queue,
                                  producer=producer, task_id=task_id)

        publisher = Publisher(publish, admission, max_wait=None if args.forever else args.max_wait,
                              stopped=lambda: stop.requested, tick=beat_while_waiting)

        def send(batch: list[dict]) -> int:
            ids = publisher.batch(batch)
            state["sent"] += len(ids)
            if args.wait_results is not None:
                sent_ids.extend(ids)
            return len(ids)

        try:
            result = run(send, records(args.seed), None if args.forever else args.count, args.rate,
                         progress=update, stop=stop, heartbeat=beat if args.forever else None,
                         lag=metrics.SCHEDULE_LAG.set if args.forever else (lambda seconds: None))
        except NotPublished as exc:
            exc.sent = state["sent"]
            raise
        finally:
            close()
    return result, sent_ids


def _wait_results(settings, task_ids: list[str], timeout: float) -> int:
    import redis

    from apps.producer.results import redis_client, wait_for_results

    log = logging.getLogger("apps.producer")
    state = {"last": 0.0}

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - state["last"] >= 5 or done == total:
            state["last"] = now
            log.info("results: %d/%d present", done, total)

    started = time.monotonic()
    try:
        with redis_client(settings) as client:
            missing = wait_for_results(client, task_ids, timeout, report=report)
    except redis.RedisError as exc:
        print(f"producer: cannot read results from Redis at {settings.redis_host}:{settings.redis_port}: "
              f"{type(exc).__name__}", file=sys.stderr)
        return 1
    if missing:
        print(f"producer: {len(missing)} of {len(task_ids)} results missing after {timeout:g}s "
              f"(first: users:{missing[0]})", file=sys.stderr)
        return 1
    print(f"all {len(task_ids)} results present (users:<task id>) after {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
