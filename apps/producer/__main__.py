"""``python -m apps.producer --count N --rate R`` or ``--forever --rate R``."""

from __future__ import annotations

import argparse
import logging
import sys

from kombu.exceptions import OperationalError
from pydantic import ValidationError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value < 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0 (0 = as fast as possible), got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m apps.producer",
        description="Submit random user records as Celery tasks to CELERY_QUEUE.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--count", type=_positive_int, help="send this many tasks, then exit")
    mode.add_argument("--forever", action="store_true",
                      help="send until SIGTERM (the Deployment mode); needs --rate > 0")
    parser.add_argument("--rate", type=_rate, required=True,
                        help="tasks per second; 0 = as fast as possible (--count only)")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible records")
    args = parser.parse_args(argv)
    if args.forever and args.rate == 0:
        parser.error("--forever needs --rate > 0 (an unthrottled endless stream would flood Redis)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from apps.producer.producer import Stop, build_app, is_tty, make_progress, run, write_heartbeat
    from apps.producer.records import records
    from apps.producer.settings import TASK_NAME, ProducerSettings

    try:
        settings = ProducerSettings()
    except ValidationError as exc:
        # Locations and messages only: never echo input values (REDIS_PASSWORD).
        for err in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(p) for p in err["loc"]).upper()
            print(f"producer configuration error: {where + ': ' if where else ''}{err['msg']}", file=sys.stderr)
        return 2

    app = build_app(settings)
    queue = settings.celery_queue
    stop = Stop()
    if args.forever:
        stop.install()

    with app.producer_or_acquire() as producer:
        def send(record: dict) -> None:
            app.send_task(TASK_NAME, args=[record], queue=queue, producer=producer)

        update, close = make_progress(args.count, tty=is_tty())
        heartbeat = (lambda n: write_heartbeat(settings.producer_heartbeat_file, n)) if args.forever else None
        try:
            result = run(send, records(args.seed), None if args.forever else args.count, args.rate,
                         progress=update, stop=stop, heartbeat=heartbeat)
        except OperationalError as exc:
            close()
            print(f"producer: cannot publish to Redis at {settings.redis_host}:{settings.redis_port} "
                  f"(queue {queue!r}): {exc}", file=sys.stderr)
            return 1
        close()
    msg = (f"sent {result.sent} tasks to queue {queue!r} in {result.seconds:.2f}s "
           f"({result.rate:.1f} tasks/s)")
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
