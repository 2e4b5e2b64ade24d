"""Real task envelopes, and malformed variants of them, for the dead-letter tests.

A real envelope is what the producer's Celery app puts in the list (sent to a scratch
queue and taken back with the harness client); a variant changes one thing in it.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from dataclasses import dataclass
from typing import Any

RECORD = {"name": "Ada Lovelace", "email": "ada@example.org", "address": "12 St James's Sq, London"}
_MISSING = object()


def real_envelope(server, send, env: dict[str, str], queue: str) -> dict:
    """One envelope exactly as the producer sends it, for ``queue`` (not left in Redis)."""
    scratch = f"scratch-{uuid.uuid4().hex[:8]}"
    send({**env, "CELERY_QUEUE": scratch}, RECORD)
    with server.client() as c:
        raw = c.rpop(scratch)
        c.delete(scratch, "_kombu.binding." + scratch, "_kombu.binding_permanent." + scratch)
    envelope = json.loads(raw)
    envelope["properties"]["delivery_info"]["routing_key"] = queue
    return envelope


def body_of(envelope: dict) -> Any:
    """The decoded body: JSON text (the producer's), or base64 of it (Celery's default)."""
    if envelope["properties"].get("body_encoding") == "base64":
        return json.loads(base64.b64decode(envelope["body"]))
    return json.loads(envelope["body"])


@dataclass
class Bad:
    """A malformed message: the raw bytes to push, and a fragment its dead-letter reason must hold."""

    label: str
    raw: bytes
    reason: str
    stage: str


def variant(envelope: dict, *, body: Any = _MISSING, headers: dict | None = None,
            drop: tuple[str, ...] = (), raw_body: str | None = None, **props: Any) -> dict:
    """A copy of ``envelope`` with a new body, header values (``_MISSING`` removes one),
    header names dropped, or properties changed; a fresh delivery tag and task id."""
    out = copy.deepcopy(envelope)
    task_id = str(uuid.uuid4())
    if isinstance(out.get("headers"), dict) and "id" in out["headers"]:
        out["headers"]["id"] = task_id
    out["properties"]["delivery_tag"] = str(uuid.uuid4())
    if body is not _MISSING:
        text = json.dumps(body)
        out["body"] = (base64.b64encode(text.encode()).decode()
                       if out["properties"].get("body_encoding") == "base64" else text)
    if raw_body is not None:
        out["body"] = raw_body
    for name, value in (headers or {}).items():
        if value is _MISSING:
            out["headers"].pop(name, None)
        else:
            out["headers"][name] = value
    for name in drop:
        out["headers"].pop(name, None)
    out["properties"].update(props)
    return out


def encode(envelope: Any) -> bytes:
    return json.dumps(envelope).encode()


def corpus(envelope: dict) -> list[Bad]:
    """Every malformed shape we know, one per stage that must catch it."""
    args, kwargs, embed = body_of(envelope)
    pickled = copy.deepcopy(envelope)
    pickled["content-type"] = "application/x-python-serialize"
    pickled["properties"]["delivery_tag"] = str(uuid.uuid4())
    no_tag = copy.deepcopy(envelope)
    del no_tag["properties"]["delivery_tag"]
    list_headers = copy.deepcopy(envelope)
    list_headers["headers"] = [1, 2]
    list_headers["properties"]["delivery_tag"] = str(uuid.uuid4())
    proto1 = variant(envelope, body={"task": "users.process", "id": str(uuid.uuid4()), "args": [RECORD],
                                     "kwargs": {}}, drop=("task",))
    hybrid = variant(envelope, body={"args": [RECORD], "kwargs": {}})
    t, c = "transport", "consumer"
    cases = [
        # transport: not a kombu envelope
        Bad("not JSON", b"\xff not json {", "undecodable message", t),
        Bad("JSON, no properties", encode({"body": "x"}), "'properties' must be an object", t),
        Bad("a JSON string", encode("just a string"), "expected a JSON object", t),
        Bad("no delivery tag", encode(no_tag), "delivery_tag", t),
        Bad("headers a list", encode(list_headers), "'headers' must be an object", t),
        Bad("body not base64", encode(variant(envelope, raw_body="!!not base64!!", body_encoding="base64")),
            "undecodable message", t),
        # consumer: Celery's protocol parsing would raise (the known shapes first)
        Bad("body an object", encode(variant(envelope, body={"a": 1})), "task body must be [args, kwargs, embed]", c),
        Bad("body a string", encode(variant(envelope, body="a string")), "task body must be", c),
        Bad("body a number", encode(variant(envelope, body=42)), "task body must be", c),
        Bad("body one level too deep", encode(variant(envelope, body=[[args, kwargs, embed]])),
            "got a list of 1", c),
        Bad("timelimit a string", encode(variant(envelope, headers={"timelimit": "x"})), "timelimit", c),
        Bad("no id header", encode(variant(envelope, headers={"id": _MISSING})), "id: Field required", c),
        Bad("kwargs a list", encode(variant(envelope, body=[args, [1, 2], embed])), "kwargs:", c),
        Bad("args an object", encode(variant(envelope, body=[{"x": 1}, kwargs, embed])), "args:", c),
        Bad("id a number", encode(variant(envelope, headers={"id": 7})), "id:", c),
        Bad("retries a string", encode(variant(envelope, headers={"retries": "x"})), "retries", c),
        Bad("eta not a date", encode(variant(envelope, headers={"eta": "tomorrow"})), "eta", c),
        Bad("timelimit above the hard limit", encode(variant(envelope, headers={"timelimit": [1e9, None]})),
            "exceeds the worker's hard time limit", c),
        Bad("callbacks", encode(variant(envelope, body=[args, kwargs, {**embed, "callbacks": [{"task": "x"}]}])),
            "this worker runs no workflow", c),
        Bad("protocol 1", encode(proto1), "no 'task' header", c),
        Bad("hybrid protocol", encode(hybrid), "protocol 1 or hybrid", c),
        Bad("pickle", encode(pickled), "ContentDisallowed", c),
        Bad("unknown task", encode(variant(envelope, headers={"task": "users.no_such_task"})), "unknown task", c),
        # task: the call is well-formed, the record is not
        Bad("bad email", encode(variant(envelope, body=[[{**RECORD, "email": "nope"}], {}, embed])), "email", "task"),
        Bad("record a string", encode(variant(envelope, body=[["just a string"], {}, embed])),
            "must be an object", "task"),
        Bad("two records", encode(variant(envelope, body=[[RECORD, RECORD], {}, embed])),
            "expected one user record", "task"),
        Bad("extra kwarg", encode(variant(envelope, body=[[], {"record": RECORD, "x": 1}, embed])),
            "expected one user record", "task"),
    ]
    return cases
