"""Is this kombu message a task call the worker can run? Checked before Celery parses it.

Celery's protocol parsing runs in the worker's main process, outside any task: a body
that is not ``[args, kwargs, embed]``, a ``timelimit`` that is not a pair, or a missing
``id`` raise there (``ValueError`` kills the worker; kombu counts ``KeyError`` as a
connection error, so the worker reconnects and gets the same message again, forever).
:func:`problem` checks every field Celery reads, with the same parsers, and says what is
wrong; the consumer (apps/worker/consumer.py) then dead-letters and acks the message.

Accepted: Celery's task message protocol 2 (what ``send_task`` and the producer send),
JSON, for a task that sends no other task: ``callbacks``, ``errbacks``, ``chain`` and
``chord`` must be empty, because this worker runs one task and no workflow, and a message
must not make it publish arbitrary tasks. A message may lower the task's time limits,
never raise them above the worker's hard limit (which the visibility timeout exceeds).
Protocol 1 and "hybrid" messages (the task's fields in the body) are refused.
"""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Any

from celery.utils.time import maybe_iso8601, maybe_make_aware
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

#: A task id becomes the key ``users:<id>``.
MAX_ID_CHARS = 255


class Refused(Exception):
    """The message is not a task call this worker runs (the text says why)."""


def _datetime(value: str) -> str:
    """ETA/expires the way Celery reads them (ISO 8601), convertible to a timestamp."""
    try:
        when = maybe_make_aware(maybe_iso8601(value), UTC)
        when.timestamp()
        when.astimezone()  # what Celery's to_system() does for an ETA
    except (AttributeError, ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"not an ISO 8601 date-time Celery can schedule ({type(exc).__name__})") from None
    return value


def _empty(value: Any) -> Any:
    if value:
        raise ValueError("must be empty: this worker runs no workflow (no callbacks, chains or chords)")
    return value


Seconds = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
DateTime = Annotated[StrictStr, AfterValidator(_datetime)]
NoWorkflow = Annotated[Any, AfterValidator(_empty)]


class TaskHeaders(BaseModel):
    """The protocol 2 headers Celery's Request and strategy read (others pass through)."""

    model_config = ConfigDict(extra="allow", strict=True)

    id: StrictStr = Field(min_length=1, max_length=MAX_ID_CHARS)
    task: StrictStr = Field(min_length=1, max_length=MAX_ID_CHARS)
    shadow: StrictStr | None = None
    lang: StrictStr | None = None
    root_id: StrictStr | None = None
    parent_id: StrictStr | None = None
    group: StrictStr | None = None
    group_index: StrictInt | None = None
    retries: StrictInt = Field(0, ge=0)
    timelimit: Annotated[list[Seconds | None], Field(min_length=2, max_length=2)] | None = None
    eta: DateTime | None = None
    expires: DateTime | None = None
    argsrepr: StrictStr | None = None
    kwargsrepr: StrictStr | None = None
    origin: StrictStr | None = None
    ignore_result: bool | None = None
    replaced_task_nesting: StrictInt = Field(0, ge=0)
    stamped_headers: list[Any] | None = None
    stamps: dict[str, Any] | None = None
    callbacks: NoWorkflow = None
    errbacks: NoWorkflow = None
    chain: NoWorkflow = None
    chord: NoWorkflow = None


class Embed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    callbacks: NoWorkflow = None
    errbacks: NoWorkflow = None
    chain: NoWorkflow = None
    chord: NoWorkflow = None


class TaskBody(BaseModel):
    """Protocol 2 body: ``[args, kwargs, embed]``."""

    model_config = ConfigDict(strict=True)

    call: tuple[list[Any], dict[str, Any], Embed | None]


def _errors(exc: ValidationError, what: str) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"]) or what
        parts.append(f"{loc}: {err['msg']}")
    return f"invalid {what}: " + "; ".join(parts)


def check_headers(headers: Any, max_time_limit: float | None = None) -> TaskHeaders:
    if not isinstance(headers, dict):
        raise Refused(f"task headers must be an object, got {type(headers).__name__}")
    if "task" not in headers:
        raise Refused("not a Celery protocol 2 task message (no 'task' header)")
    try:
        parsed = TaskHeaders.model_validate(headers)
    except ValidationError as exc:
        raise Refused(_errors(exc, "task headers")) from None
    if max_time_limit is not None and parsed.timelimit:
        for name, value in zip(("hard", "soft"), parsed.timelimit, strict=True):
            if value is not None and value > max_time_limit:
                raise Refused(f"invalid task headers: timelimit: the {name} limit {value:g}s exceeds the "
                              f"worker's hard time limit {max_time_limit:g}s")
    return parsed


def check_body(body: Any) -> TaskBody:
    if isinstance(body, dict) and ("args" in body or "task" in body):
        raise Refused("not a Celery protocol 2 task body (protocol 1 or hybrid message)")
    try:
        # JSON has no tuples; strict mode would refuse a list where the model says tuple.
        return TaskBody.model_validate({"call": tuple(body) if isinstance(body, list) else body})
    except ValidationError as exc:
        if not isinstance(body, (list, tuple)) or len(body) != 3:
            shape = f"a list of {len(body)}" if isinstance(body, (list, tuple)) else type(body).__name__
            raise Refused(f"task body must be [args, kwargs, embed], got {shape}") from None
        raise Refused(_errors(exc, "task body").replace("call.0", "args").replace("call.1", "kwargs")
                      .replace("call.2", "embed")) from None


def problem(message, max_time_limit: float | None = None) -> str | None:
    """Why ``message`` (a kombu Message) cannot become a call of a task, or None.

    Decodes the body (kombu caches it, so Celery does not decode twice); a content type
    that is not accepted (pickle...) or a body that does not decode is a problem too.
    """
    try:
        check_headers(message.headers, max_time_limit)
        try:
            body = message.decode()
        except Exception as exc:  # noqa: BLE001 - kombu raises many kinds for a bad body
            raise Refused(f"cannot decode the body: {type(exc).__name__}: {exc}") from None
        check_body(body)
    except Refused as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a check that cannot even run: still the message's
        return f"cannot check the task message: {type(exc).__name__}: {exc}"
    return None
