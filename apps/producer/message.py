"""What a queued task carries: Celery's protocol 2 message, without what no one reads.

Celery's ``send_task`` writes every protocol 2 field, most of them empty (``eta``,
``expires``, ``group``, ``parent_id``, ``stamps``... 13 ``null``s), the task id three more
times (``root_id``, ``correlation_id``, and ``reply_to``'s RPC address beside it), the
workflow fields of the body (``callbacks``, ``errbacks``, ``chain``, ``chord``) and the
body itself in base64 (a third larger). This platform's tasks start no workflows and keep
no results, so the producer sends (``LeanAMQP``, the producer app's ``amqp`` class):

- headers: ``lang``, ``task``, ``id``, ``argsrepr`` (a placeholder, apps/producer/
  settings.py), and any other field only when it says something (a retry count, an ETA...);
- properties: none of Celery's own (kombu adds its delivery tag and routing);
- body: ``[args, kwargs, {}]`` as JSON text, not base64 (the producer's transport option
  ``body_encoding``).

Celery's worker reads every field it needs with a default, and the worker's envelope check
(apps/worker/envelope.py) takes the same message: tests/apps/producer/test_producer.py
runs it through a real worker. A queued task is about half its former size
(docs/capacity.md).
"""

from __future__ import annotations

from celery.app.amqp import AMQP

from apps.producer.settings import ARGSREPR

#: Headers kept even when Celery's value is the default.
KEEP = ("lang", "task", "id", "argsrepr")
#: Celery's defaults for fields it always writes, dropped when a header holds them
#: (``None`` is dropped everywhere). ``origin`` (the sending host, read by task events) goes too.
DEFAULTS = {"retries": 0, "replaced_task_nesting": 0, "kwargsrepr": "{}", "timelimit": [None, None],
            "stamps": {}, "ignore_result": False}
DROPPED = ("origin",)


def lean_headers(headers: dict) -> dict:
    """``headers`` without the fields that hold only Celery's default (``root_id`` too
    when it is the task itself, as for every task the producer sends)."""
    return {key: value for key, value in headers.items() if key in KEEP or not _says_nothing(key, value, headers)}


def _says_nothing(key: str, value, headers: dict) -> bool:
    return (value is None or key in DROPPED or (key in DEFAULTS and DEFAULTS[key] == value)
            or (key == "root_id" and value == headers.get("id")))


class LeanAMQP(AMQP):
    """Celery's message builder, with the lean headers, no properties of Celery's own and
    the workflow part empty unless it holds something (the producer sends no workflows; a
    caller that did would keep its callbacks)."""

    def as_task_v2(self, task_id, name, args=None, kwargs=None, *rest, **options):
        options["argsrepr"] = ARGSREPR
        message = super().as_task_v2(task_id, name, args, kwargs, *rest, **options)
        args_, kwargs_, embed = message.body
        embed = {key: value for key, value in embed.items() if value is not None}
        return message._replace(headers=lean_headers(message.headers), properties={},
                                body=(args_, kwargs_, embed))
