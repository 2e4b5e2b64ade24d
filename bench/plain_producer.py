"""Plain Celery's producer, the benchmarks' baseline: ``send_task`` in a loop with Celery's
defaults (one ``LPUSH`` round trip a task, Celery's own headers, ``argsrepr`` included), the
same records as the project's producer (apps/producer/records.py), kombu's stock transport.

    python -m bench.plain_producer N     # the REDIS_* contract variables, CELERY_QUEUE
"""

from __future__ import annotations

import os
import sys

from celery import Celery

from apps.common.redis_settings import RedisSettings
from apps.producer.records import records
from apps.producer.settings import TASK_NAME
from apps.worker.celery_app import url_with_credential


def main(argv: list[str]) -> int:
    n = int(argv[0])
    app = Celery("bench-plain-producer", broker=url_with_credential(RedisSettings()))
    queue = os.environ.get("CELERY_QUEUE", "celery")
    with app.producer_or_acquire() as producer:
        for record, _ in zip(records(1), range(n), strict=False):
            app.send_task(TASK_NAME, args=[record], queue=queue, producer=producer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
