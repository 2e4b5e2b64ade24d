"""kombu's Redis transport with a recoverable pop, a dead-letter list for garbage, and
only the Redis commands that Redis 6.0 has (Azure Cache for Redis is 6.0.14).

Stock kombu consumes with ``BRPOP``: Redis removes the message from the list, and only
afterwards does the worker record it as unacknowledged (``ZADD``/``HSET``). A worker
killed between the two (SIGKILL, OOM, node loss) loses that message for good.

Here the pop is ``BRPOPLPUSH <queue> <queue>.inflight`` (Redis 2.2+; the same move as
6.2's ``BLMOVE ... RIGHT LEFT``): the message stays in Redis while in flight. Once kombu
has recorded it as unacknowledged it is removed from ``<queue>.inflight``. The periodic
restore sweep (the one that redelivers unacked messages older than
``visibility_timeout``) also pushes back inflight entries that have stayed there for
``visibility_timeout``: their worker died in that window. The worst case is a duplicate
delivery, which the task tolerates (it rewrites the same key).

kombu 5.7 itself sends two Redis 6.2 forms, both replaced here with 6.0 equivalents:
the unacked sweep's ``ZRANGE ... BYSCORE REV`` (``ZREVRANGEBYSCORE``, as kombu did before)
and ``ZADD ... GT`` in the script that keeps expiring queues' bindings alive (Celery's
``celery inspect``/remote-control reply queues): ``ZSCORE`` + ``ZADD`` in the same script.

A message that is not JSON or not a kombu envelope cannot reach Celery at all; stock
kombu raises inside the event loop. Here it is pushed to the dead-letter list with the
reason (apps/worker/dead_letters.py: bounded list, bounded entries), and the worker goes on.

Only the plain single-key case is changed (one queue, ``priority_steps=[0]``, no
``global_keyprefix``): anything else falls back to kombu's own BRPOP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cached_property
from queue import Empty
from typing import Any

from kombu.transport import redis as kredis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from apps.common import redis_transport
from apps.worker.dead_letters import DeadLetters

logger = logging.getLogger(__name__)

#: Called with the stage name when this module dead-letters a message (metrics hook).
on_dead_letter: Callable[[str], None] | None = None

INFLIGHT_SUFFIX = ".inflight"

#: The pop: BLMOVE src dst RIGHT LEFT, in the form Redis has had since 2.2.
POP_COMMAND = "BRPOPLPUSH"

# Move one inflight entry back to its queue, once, even if two sweepers race.
_RESTORE_INFLIGHT = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""

# kombu's REFRESH_BINDING without ZADD's GT flag (Redis 6.2): raise the exchange's
# deadline only if the new one is later (ZADD GT also adds a missing member).
REFRESH_BINDING_6_0 = """
redis.call('SADD', KEYS[1], ARGV[1])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local deadline = ms + tonumber(ARGV[3])
local current = redis.call('ZSCORE', KEYS[2], ARGV[2])
if (not current) or tonumber(current) < deadline then
  redis.call('ZADD', KEYS[2], deadline, ARGV[2])
end
"""


def check_envelope(payload: Any) -> dict:
    """The fields kombu and this transport read from a message, with the right types.

    Raises ``ValueError`` naming the first problem. Checked before kombu builds its
    Message, so a bad field cannot fail halfway through the unacked bookkeeping, nor
    later when the sweep restores the message (kombu drops a message it cannot restore).
    """
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    props = payload.get("properties")
    if not isinstance(props, dict):
        raise ValueError("not a kombu envelope: 'properties' must be an object")
    tag = props.get("delivery_tag")
    if not isinstance(tag, str) or not tag:
        raise ValueError("not a kombu envelope: 'properties.delivery_tag' must be a non-empty string")
    info = props.get("delivery_info")
    if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in ("exchange", "routing_key")):
        raise ValueError("not a kombu envelope: 'properties.delivery_info' must hold string "
                         "'exchange' and 'routing_key'")
    if not isinstance(payload.get("headers") or {}, dict):
        raise ValueError("not a kombu envelope: 'headers' must be an object")
    for key in ("body", "content-type", "content-encoding"):
        if payload.get(key) is not None and not isinstance(payload[key], str):
            raise ValueError(f"not a kombu envelope: {key!r} must be a string")
    return payload


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

    def restore_visible(self, start=0, num=10, interval=10) -> int:
        """kombu's sweep with ``ZREVRANGEBYSCORE`` (kombu 5.7 sends 6.2's ``ZRANGE ...
        BYSCORE REV``), then the ``<queue>.inflight`` sweep. Same mutex, same throttle.
        Returns how many unacked messages it put back (0 if another sweeper held the mutex)."""
        self._vrestore_count += 1
        if (self._vrestore_count - 1) % (interval or 1):
            return 0
        restored = 0
        with self.channel.conn_or_acquire() as client:
            ceil = time.time() - self.visibility_timeout
            try:
                with kredis.Mutex(client, self.unacked_mutex_key, self.unacked_mutex_expire):
                    visible = client.zrevrangebyscore(
                        self.unacked_index_key, ceil, 0,
                        start=num and start, num=num, withscores=True)
                    for tag, _score in visible or []:
                        restored += self.restore_by_tag(tag, client)
            except kredis.MutexHeld:
                pass
        if restored:
            logger.warning("restored %d unacked message(s) older than the visibility timeout "
                           "(%gs): their worker died", restored, self.visibility_timeout)
        self.channel.restore_inflight()
        return restored

    def restore_by_tag(self, tag, client=None, leftmost=False) -> bool:
        """kombu's, returning whether this call put the message back (False: someone else did)."""

        def restore_transaction(pipe):
            raw = pipe.hget(self.unacked_key, tag)
            pipe.multi()
            self._remove_from_indices(tag, pipe)
            if raw:
                message, exchange, routing_key = loads(bytes_to_str(raw))
                self.channel._do_restore_message(message, exchange, routing_key, pipe, leftmost)
            return bool(raw)

        with self.channel.conn_or_acquire(client) as client:
            return client.transaction(restore_transaction, self.unacked_key, value_from_callable=True)


class Channel(redis_transport.Channel):
    QoS = QoS

    #: Redis list receiving messages that cannot be decoded, and its bounds (transport
    #: options, from DEAD_LETTER_MAX_LENGTH / DEAD_LETTER_MAX_ENTRY_BYTES).
    dead_letter_list: str | None = None
    dead_letter_max_length: int = 1000
    dead_letter_max_entry_bytes: int = 16384

    from_transport_options = kredis.Channel.from_transport_options + (
        "dead_letter_list", "dead_letter_max_length", "dead_letter_max_entry_bytes")

    _pop_key: str | None = None
    _pending_inflight: tuple[str, bytes] | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._inflight_seen: dict[bytes, float] = {}

    @cached_property
    def _refresh_binding(self):
        return self._create_client().register_script(REFRESH_BINDING_6_0)

    @cached_property
    def dead_letters(self) -> DeadLetters | None:
        if not self.dead_letter_list:
            return None
        return DeadLetters(self.dead_letter_list, int(self.dead_letter_max_length),
                           int(self.dead_letter_max_entry_bytes))

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
            self._pop_key = None
            return super()._brpop_start(timeout)
        self._pop_key = key
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()
        self.client.connection.send_command(POP_COMMAND, key, key + INFLIGHT_SUFFIX, timeout or 0)

    def _brpop_read(self, **options):
        key = self._pop_key
        if key is None:
            return super()._brpop_read(**options)
        try:
            try:
                item = self.client.parse_response(self.client.connection, POP_COMMAND, **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if item is None:
                raise Empty()
            inflight = key + INFLIGHT_SUFFIX
            raw = bytes_to_str(item)
            try:
                payload = check_envelope(loads(raw))
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
            self._pop_key = None
            self._flush_brpop_reauth()

    def _dead_letter(self, raw: str, queue_key: str, exc: Exception) -> None:
        reason = f"undecodable message: {type(exc).__name__}: {exc}"
        logger.error("dead-lettering message from %s: %s", queue_key, reason[:500])
        if self.dead_letters is not None:
            with self.conn_or_acquire() as client:
                self.dead_letters.push(client, reason, raw, queue=queue_key, stage="transport")
            if on_dead_letter is not None:
                on_dead_letter("transport")
        return None

    # ---- recovery ---------------------------------------------------------------------
    def restore_inflight(self, key: str | None = None) -> int:
        """Push back entries left in ``<queue>.inflight`` for ``visibility_timeout``.

        ``key``: the queue's list (the sweeper, which consumes nothing); by default the
        one list this channel consumes from.
        """
        if key is None and self.active_queues:
            key = self._single_key(self.active_queues)
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


class Transport(redis_transport.Transport):
    Channel = Channel
