"""The dead-letter list: one bounded writer for every stage that gives up on a message.

Every path that dead-letters (the transport, the consumer, the task, a task's final
failure) calls :meth:`DeadLetters.push`, which applies both bounds:

- the list keeps the newest ``DEAD_LETTER_MAX_LENGTH`` entries (``LPUSH`` + ``LTRIM`` in one
  ``MULTI/EXEC``; the oldest entries are dropped);
- an entry is at most ``DEAD_LETTER_MAX_ENTRY_BYTES`` of JSON: a payload or reason that does
  not fit is cut, and the entry says so (``truncated: true``) and records the original
  sizes (``payload_bytes``, ``reason_bytes``).

Only Redis 6.0 commands (Azure Cache for Redis). Nothing here knows about Celery.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

logger = logging.getLogger(__name__)

#: A reason longer than this is cut first (the payload is what an operator replays).
REASON_MAX_BYTES = 1024
#: Metadata values (task id, queue, stage...) are cut to this many characters.
META_MAX_CHARS = 256
#: The smallest entry bound that still leaves room for the reason and some payload.
MIN_ENTRY_BYTES = 4096


def _size(value: Any) -> int:
    return len(_dumps(value).encode("utf-8"))


def _dumps(value: Any) -> str:
    return json.dumps(value, default=repr, ensure_ascii=False, separators=(",", ":"))


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose JSON string encoding fits ``max_bytes``."""
    if max_bytes <= 2:
        return ""
    cut = min(len(text), max_bytes)
    while cut > 0:
        size = _size(text[:cut])
        if size <= max_bytes:
            return text[:cut]
        # Escapes and multi-byte characters make the encoding longer than the prefix.
        cut = min(cut - 1, cut * max_bytes // size)
    return ""


@dataclass(frozen=True)
class DeadLetters:
    """Where dead letters go and how big the list and its entries may get."""

    key: str
    max_length: int = 1000
    max_entry_bytes: int = 16384

    def __post_init__(self) -> None:
        if self.max_length < 1:
            raise ValueError(f"DEAD_LETTER_MAX_LENGTH must be >= 1, got {self.max_length}")
        if self.max_entry_bytes < MIN_ENTRY_BYTES:
            raise ValueError(f"DEAD_LETTER_MAX_ENTRY_BYTES must be >= {MIN_ENTRY_BYTES}, "
                             f"got {self.max_entry_bytes}")

    def entry(self, reason: str, payload: Any, *, now: float | None = None, **meta: Any) -> str:
        """One list element: JSON with the reason, the payload (cut to fit) and ``meta``."""
        meta = {k: v if v is None or isinstance(v, (int, float, bool)) else str(v)[:META_MAX_CHARS]
                for k, v in meta.items()}
        text = payload if isinstance(payload, str) else _dumps(payload)
        payload_bytes = len(text.encode("utf-8"))
        reason_bytes = len(reason.encode("utf-8"))
        entry = {"reason": reason, "payload": payload, "payload_bytes": payload_bytes,
                 "truncated": False, "dead_lettered_at": time.time() if now is None else now, **meta}
        encoded = _dumps(entry)
        if len(encoded.encode("utf-8")) <= self.max_entry_bytes:
            return encoded
        # Too big: the payload becomes a (cut) JSON text, the reason is cut to its share.
        entry.update(truncated=True, reason_bytes=reason_bytes,
                     reason=_cut(reason, REASON_MAX_BYTES), payload="")
        room = self.max_entry_bytes - _size(entry)
        entry["payload"] = _cut(text, room + 2)  # the empty string's two quotes were counted
        return _dumps(entry)

    def push(self, client: redis.Redis, reason: str, payload: Any, **meta: Any) -> int:
        """LPUSH the entry and trim the list, in one transaction; returns the list length."""
        with client.pipeline(transaction=True) as pipe:
            pipe.lpush(self.key, self.entry(reason, payload, **meta))
            pipe.ltrim(self.key, 0, self.max_length - 1)
            length, _ = pipe.execute()
        if length > self.max_length:
            logger.warning("dead-letter list %s is full (%d entries): the oldest entry was dropped",
                           self.key, self.max_length)
        return min(length, self.max_length)
