"""kombu's Redis transport with a recoverable pop and a dead-letter list for garbage.

Stock kombu consumes with ``BRPOP``: Redis removes the message from the list, and only
afterwards does the worker record it as unacknowledged (``ZADD``/``HSET``). A worker
killed between the two (SIGKILL, OOM, node loss) loses that message for good.

Here the pop is ``BLMOVE <queue> <queue>.inflight RIGHT LEFT``: the message stays in
Redis while in flight. Once kombu has recorded it as unacknowledged it is removed from
``<queue>.inflight``. The periodic restore sweep (the one that redelivers unacked
messages older than ``visibility_timeout``) also pushes back inflight entries that have
stayed there for ``visibility_timeout``: their worker died in that window. The worst
case is a duplicate delivery, which the task tolerates (it rewrites the same key).

A message that is not JSON or not a kombu envelope cannot reach Celery at all; stock
kombu raises inside the event loop. Here it is pushed to the dead-letter list with the
reason, and the worker goes on.

Only the plain single-key case is changed (one queue, ``priority_steps=[0]``, no
``global_keyprefix``): anything else falls back to kombu's own BRPOP.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from queue import Empty

from kombu.transport import redis as kredis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

#: Called with the stage name when this module dead-letters a message (metrics hook).
on_dead_letter: Callable[[str], None] | None = None

INFLIGHT_SUFFIX = ".inflight"

# Move one inflight entry back to its queue, once, even if two sweepers race.
_RESTORE_INFLIGHT = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


def dead_letter_entry(reason: str, payload: str, **meta) -> str:
    """One dead-letter list element: JSON with the reason and the original payload."""
    entry = {"reason": reason, "payload": payload, "dead_lettered_at": time.time(), **meta}
    return json.dumps(entry, default=str)


class QoS(kredis.QoS):
    def append(self, message, delivery_tag):
        """Record the message as unacked and drop its inflight copy in one transaction."""
        inflight = self.channel._pending_inflight
        if inflight is None:
            return super().append(message, delivery_tag)
        key, item = inflight
        # Pure work first: a payload without delivery_info/exchange/routing_key fails
        # here, while _pending_inflight still marks it as "not recorded" (dead-lettered).
        delivery = message.delivery_info
        record = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        self.channel._pending_inflight = None
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()}) \
                .hset(self.unacked_key, delivery_tag, record) \
                .lrem(key, 1, item) \
                .execute()
        # virtual.QoS bookkeeping (what kredis.QoS.append does after its pipeline).
        virtual.QoS.append(self, message, delivery_tag)

    def restore_visible(self, start=0, num=10, interval=10):
        due = self._vrestore_count % (interval or 1) == 0
        super().restore_visible(start=start, num=num, interval=interval)
        if due:
            self.channel.restore_inflight()


class Channel(kredis.Channel):
    QoS = QoS

    #: Redis list receiving messages that cannot be decoded (transport option).
    dead_letter_list: str | None = None

    from_transport_options = kredis.Channel.from_transport_options + ("dead_letter_list",)

    _blmove_key: str | None = None
    _pending_inflight: tuple[str, bytes] | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._inflight_seen: dict[bytes, float] = {}

    # ---- consuming --------------------------------------------------------------------
    def _single_key(self, queues) -> str | None:
        keys = [self._q_for_pri(q, pri) for pri in self.priority_steps for q in queues]
        if len(keys) != 1 or self.global_keyprefix:
            return None
        return keys[0]

    def _brpop_start(self, timeout=None):
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        key = self._single_key(queues)
        if key is None:
            self._blmove_key = None
            return super()._brpop_start(timeout)
        self._blmove_key = key
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()
        self.client.connection.send_command(
            "BLMOVE", key, key + INFLIGHT_SUFFIX, "RIGHT", "LEFT", timeout or 0)

    def _brpop_read(self, **options):
        key = self._blmove_key
        if key is None:
            return super()._brpop_read(**options)
        try:
            try:
                item = self.client.parse_response(self.client.connection, "BLMOVE", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if item is None:
                raise Empty()
            inflight = key + INFLIGHT_SUFFIX
            raw = bytes_to_str(item)
            try:
                payload = loads(raw)
                if not isinstance(payload, dict):
                    raise TypeError(f"expected a JSON object, got {type(payload).__name__}")
            except Exception as exc:  # noqa: BLE001 - anything here is a bad payload
                payload = self._dead_letter(raw, key, exc)
            if payload is not None:
                queue = key.rsplit(self.sep, 1)[0]
                self._queue_cycle.rotate(queue)
                # QoS.append records the message as unacked and removes the inflight
                # copy in one MULTI/EXEC, before Celery sees the message.
                self._pending_inflight = (inflight, item)
                try:
                    self.connection._deliver(payload, queue)
                except Exception as exc:
                    if self._pending_inflight is None:
                        # QoS.append was reached: a Redis error while recording (the
                        # message is still in .inflight; the sweep restores it) or an
                        # error in Celery's own handling. Not a payload problem.
                        raise
                    # Nothing but kombu building its Message and QoS.append's own field
                    # lookups run before the Redis write, and they do no I/O: this
                    # payload is not a kombu envelope (no properties, no delivery tag,
                    # no delivery_info, bad body encoding...). Note that kombu
                    # counts KeyError as a connection error: re-raising it would make
                    # Celery reconnect and the sweep redeliver it, forever.
                    payload = self._dead_letter(raw, key, exc)
            if payload is None or self._pending_inflight is not None:
                # Dead-lettered, or not appended (no consumer: kombu requeued it).
                with self.conn_or_acquire() as client:
                    client.lrem(inflight, 1, item)
            if payload is None:
                raise Empty()
            return True
        finally:
            self._pending_inflight = None
            self._in_poll = None
            self._blmove_key = None
            self._flush_brpop_reauth()

    def _dead_letter(self, raw: str, queue_key: str, exc: Exception) -> None:
        reason = f"undecodable message: {type(exc).__name__}: {exc}"
        logger.error("dead-lettering message from %s: %s", queue_key, reason)
        if self.dead_letter_list:
            with self.conn_or_acquire() as client:
                client.lpush(self.dead_letter_list,
                             dead_letter_entry(reason, raw, queue=queue_key, stage="transport"))
            if on_dead_letter is not None:
                on_dead_letter("transport")
        return None

    # ---- recovery ---------------------------------------------------------------------
    def restore_inflight(self) -> int:
        """Push back entries left in ``<queue>.inflight`` for ``visibility_timeout``."""
        key = self._single_key(self.active_queues) if self.active_queues else None
        if key is None:
            return 0
        inflight = key + INFLIGHT_SUFFIX
        now = time.monotonic()
        restored = 0
        try:
            with self.conn_or_acquire() as client:
                items = client.lrange(inflight, 0, -1)
                seen: dict[bytes, float] = {}
                for item in items:
                    first = self._inflight_seen.get(item, now)
                    if now - first >= self.visibility_timeout:
                        restored += int(client.eval(_RESTORE_INFLIGHT, 2, inflight, key, item))
                    else:
                        seen[item] = first
                self._inflight_seen = seen
        except self.connection_errors:
            logger.debug("inflight sweep skipped: connection error", exc_info=True)
        if restored:
            logger.warning("restored %d message(s) popped by a worker that died before "
                           "recording them", restored)
        return restored


class Transport(kredis.Transport):
    Channel = Channel
