"""The work itself, as plain functions: validate a user record and store it in Redis.

Nothing here knows about Celery; ``tasks.py`` is a thin wrapper over these.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class BadPayload(Exception):
    """The task's arguments are not a valid user record (never retried)."""


class UserRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)
    address: str = Field(min_length=1, max_length=500)


def parse_record(args: Sequence[Any], kwargs: Mapping[str, Any]) -> UserRecord:
    """Accept ``(record,)`` or ``record=...``; anything else is a :class:`BadPayload`."""
    if len(args) == 1 and not kwargs:
        raw = args[0]
    elif not args and set(kwargs) == {"record"}:
        raw = kwargs["record"]
    else:
        raise BadPayload(f"expected one user record argument, got args={len(args)} "
                         f"kwargs={sorted(kwargs)}")
    if not isinstance(raw, Mapping):
        raise BadPayload(f"user record must be an object, got {type(raw).__name__}")
    try:
        return UserRecord.model_validate(dict(raw))
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<record>'}: {e['msg']}"
                           for e in exc.errors())
        raise BadPayload(f"invalid user record: {errors}") from None


def user_key(task_id: str) -> str:
    return f"users:{task_id}"


def store_user(client: redis.Redis, task_id: str, record: UserRecord, worker_id: str,
               ttl_seconds: int, now: Callable[[], float] = time.time,
               also: Callable[[redis.client.Pipeline], object] | None = None) -> str:
    """Write the HASH ``users:<task id>`` with its retention, in one ``MULTI/EXEC``
    (HSET + EXPIRE: a record never exists without its TTL), with ``also``'s commands in
    the same transaction. A redelivery rewrites the same key and restarts the TTL."""
    key = user_key(task_id)
    mapping: dict[str, Any] = {**record.model_dump(), "worker_id": worker_id, "processed_at": f"{now():.6f}"}
    with client.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]  # str, int and float values
        pipe.expire(key, ttl_seconds)
        if also is not None:
            also(pipe)
        pipe.execute()
    return key


def work_time(low: float, high: float, rng: random.Random | None = None) -> float:
    return (rng or random).uniform(low, high) if high > 0 else 0.0


def simulate_work(seconds: float, sleep: Callable[[float], None] = time.sleep) -> None:
    if seconds > 0:
        sleep(seconds)

