"""``python -m apps.producer --count N --rate R [--wait-results S]``, ``--forever --rate R``
or ``--standby``."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from kombu.exceptions import OperationalError

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
    args = parser.parse_args(argv)
    if args.standby:
        if args.rate is not None or args.wait_results is not None:
            parser.error("--standby takes no --rate or --wait-results (it sends nothing)")
        return args
    if args.rate is None:
        parser.error("the following arguments are required: --rate")
    if args.forever and not 0 < args.rate <= MAX_FOREVER_RATE:
        parser.error(f"--forever needs 0 < --rate <= {MAX_FOREVER_RATE:g} tasks/s (an endless stream "
                     "faster than that would flood Redis; send bursts with --count)")
    if args.forever and args.wait_results is not None:
        parser.error("--wait-results needs --count (forever mode never finishes sending)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from apps.common.config_errors import load_settings
    from apps.producer import metrics
    from apps.producer.producer import Stop, build_app, is_tty, make_progress, run, standby, write_heartbeat
    from apps.producer.records import records
    from apps.producer.settings import TASK_NAME, ProducerSettings

    try:
        # Variables and messages only: never the values (REDIS_PASSWORD).
        settings = load_settings(ProducerSettings, "producer")
    except SystemExit as exc:
        return int(exc.code)

    stop = Stop()
    if args.forever or args.standby:
        # Only the long-running process serves /metrics (a --count burst would collide on the port).
        metrics.serve(settings.producer_metrics_port)
    if args.standby:
        stop.install()
        standby(stop, lambda: write_heartbeat(settings.producer_heartbeat_file, 0))
        print("producer: standby ended")
        return 0

    app = build_app(settings)
    queue = settings.celery_queue
    if args.forever:
        stop.install()
    sent_ids: list[str] = []

    with app.producer_or_acquire() as producer:
        def send(record: dict) -> None:
            result = app.send_task(TASK_NAME, args=[record], queue=queue, producer=producer)
            metrics.SENT.inc()
            if args.wait_results is not None:
                sent_ids.append(result.id)

        update, close = make_progress(args.count, tty=is_tty())
        heartbeat = (lambda n: write_heartbeat(settings.producer_heartbeat_file, n)) if args.forever else None
        try:
            result = run(send, records(args.seed), None if args.forever else args.count, args.rate,
                         progress=update, stop=stop, heartbeat=heartbeat)
        except OperationalError as exc:
            metrics.PUBLISH_ERRORS.inc()
            close()
            print(f"producer: cannot publish to Redis at {settings.redis_host}:{settings.redis_port} "
                  f"(queue {queue!r}): {exc}", file=sys.stderr)
            return 1
        close()
    msg = (f"sent {result.sent} tasks to queue {queue!r} in {result.seconds:.2f}s "
           f"({result.rate:.1f} tasks/s)")
    print(msg)
    if args.wait_results is not None:
        return _wait_results(settings, sent_ids, args.wait_results)
    return 0


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
