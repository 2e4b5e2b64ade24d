"""kombu's Redis transport with a recoverable pop, a dead-letter list for garbage, and
only the Redis commands that Redis 6.0 has (Azure Cache for Redis is 6.0.14).

Stock kombu consumes with ``BRPOP``: Redis removes the message from the list, and only
afterwards does the worker record it as unacknowledged (``ZADD``/``HSET``). A worker
killed between the two (SIGKILL, OOM, node loss) loses that message for good.

Here, while the queue has messages, the pop is one script (``_POP_AND_RECORD``): the oldest
message moves from the queue into kombu's unacked records (``ZADD`` + ``HSET``, scored with
Redis's clock) in one step, so it is never outside Redis and kombu records nothing more.
One round trip, where stock kombu takes two (BRPOP, then MULTI/EXEC) and the blocking form
below three. The script finds the delivery tag in the message text (kombu's own
``"delivery_tag": "..."``, once); a message whose tag it cannot find that way takes the
blocking form's path below, and a message that turns out not to be a kombu envelope is
dead-lettered from ``unacked`` (``_take_recorded``).

When the queue is empty the pop blocks: ``BRPOPLPUSH <queue> <queue>.inflight`` (Redis
2.2+; the same move as 6.2's ``BLMOVE ... RIGHT LEFT``): the message stays in Redis while
in flight. Once kombu has recorded it as unacknowledged it is removed from
``<queue>.inflight``. The next pop is the script again. The periodic restore sweep (the
one that redelivers unacked messages older than ``visibility_timeout``) also pushes back
inflight entries that have stayed there for ``visibility_timeout``: their worker died in
that window. The worst case is a duplicate delivery, which the task tolerates (it rewrites
the same key).

kombu 5.7 itself sends two Redis 6.2 forms, both replaced here with 6.0 equivalents:
the unacked sweep's ``ZRANGE ... BYSCORE REV`` (``ZREVRANGEBYSCORE``, as kombu did before)
and ``ZADD ... GT`` in the script that keeps expiring queues' bindings alive (Celery's
``celery inspect``/remote-control reply queues): ``ZSCORE`` + ``ZADD`` in the same script.

A message that is not JSON or not a kombu envelope cannot reach Celery at all; stock
kombu raises inside the event loop. Here it is pushed to the dead-letter list with the
reason (apps/worker/dead_letters.py: bounded list, bounded entries), and the worker goes on.

At Redis's limits (docs/worker.md, "At Redis's limits"): at ``maxmemory`` with
``noeviction`` Redis refuses every command that may grow memory (``BRPOPLPUSH``, ``ZADD``,
``HSET``, ``LPUSH``, ``SET``) and every command queued in a ``MULTI``, even ``ZREM`` and
``HDEL``; a restarting server answers ``LOADING``, a replica ``READONLY``. Those are replies
on a healthy connection, so here they pause the pop (bounded backoff, apps/worker/
availability.py) instead of killing the worker or reconnecting:

- a refused pop took nothing (the script's first write is ``ZADD``, refused at ``maxmemory``
  before anything moved);
- a popped message whose unacked record (or dead letter) is refused goes back to the queue
  at once, with the inflight restore script: its first write is ``LREM``, which Redis runs
  at ``maxmemory``, and a script that has written runs to its end (docs/redis-targets.md);
- the ack removes the unacked record with a script of ``HDEL`` + ``ZREM`` (kombu's
  ``MULTI``/``EXEC`` of the same two is refused when memory is full), so finishing a task
  frees memory instead of failing;
- a requeue or a sweep that Redis refuses leaves the message in ``unacked``, where the next
  sweep after the visibility timeout finds it: a late redelivery, never a loss.

Only the plain single-key case is changed (one queue, ``priority_steps=[0]``, no
``global_keyprefix``): anything else falls back to kombu's own BRPOP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import cached_property
from queue import Empty
from typing import Any, NoReturn

from kombu.transport import redis as kredis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from redis.exceptions import NoScriptError

from apps.common import redis_transport
from apps.common.redis_errors import REFUSED, UNAVAILABLE
from apps.worker.availability import WAIT
from apps.worker.dead_letters import DeadLetters

logger = logging.getLogger(__name__)

#: Called with the stage name when this module dead-letters a message (metrics hook).
on_dead_letter: Callable[[str], None] | None = None

INFLIGHT_SUFFIX = ".inflight"

#: The pop on an empty queue: BLMOVE src dst RIGHT LEFT, in the form Redis has had since 2.2.
POP_COMMAND = "BRPOPLPUSH"

# The pop on a queue with messages. The oldest message (the list's right end) moves into
# kombu's unacked records under its delivery tag, in kombu's format ([message, exchange,
# routing key]; ARGV[1] closes it with the anonymous exchange and the queue, which is where
# kombu's restore sends it back). The tag is found as plain text, not by decoding the JSON
# (cjson costs ~20 us a message here): kombu writes `"delivery_tag": "<tag>"`, and a JSON
# string cannot hold an unescaped quote, so a single unescaped `"delivery_tag"` is a key.
# Anything else (none, two, an odd tag) goes to the inflight list, as the blocking pop's
# messages do, and Python judges it. TIME and LINDEX are reads; the first write is ZADD,
# which Redis refuses at maxmemory: then nothing moved. Returns false (empty queue),
# {message, tag} (recorded) or {message} (in KEYS[4], not recorded).
_POP_AND_RECORD = """
local raw = redis.call('LINDEX', KEYS[1], -1)
if not raw then return false end
local s, e = string.find(raw, '"delivery_tag": "', 1, true)
local close = e and string.find(raw, '"', e + 1, true)
if close and string.find(raw, '"delivery_tag"', 1, true) == s
    and not string.find(raw, '"delivery_tag"', close + 1, true) then
  local tag = string.sub(raw, e + 1, close - 1)
  if string.find(tag, '^[%w%-_.:]+$') then
    local now = redis.call('TIME')
    redis.call('ZADD', KEYS[2], tonumber(now[1]) + tonumber(now[2]) / 1000000, tag)
    redis.call('HSET', KEYS[3], tag, '[' .. raw .. ARGV[1])
    redis.call('RPOP', KEYS[1])
    return {raw, tag}
  end
end
return {redis.call('RPOPLPUSH', KEYS[1], KEYS[4])}
"""

# A popped message recorded in unacked that Celery must not get (not an envelope, or its
# dead letter refused): the record goes, the message back to the queue's pop end. The
# first write is HDEL, which Redis runs at maxmemory.
_UNRECORD = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('RPUSH', KEYS[3], ARGV[2])
end
"""

# Move one inflight entry back to its queue, once, even if two sweepers race.
_RESTORE_INFLIGHT = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""

# Record a popped message as unacked and drop its inflight copy, scored with Redis's own
# clock: kombu scores with the recording process's time.time(), and a sweep on a node whose
# clock disagrees by more than (visibility timeout - longest task) took running tasks for
# abandoned ones. TIME comes before the first write, which every Redis version allows in a
# script; the first write (ZADD) is the one Redis checks at maxmemory, so a refusal writes
# nothing, as kombu's MULTI did. Lua turns the score into 14 significant digits: 0.1 ms.
_RECORD = """
local now = redis.call('TIME')
local score = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('LREM', KEYS[3], 1, ARGV[3])
"""


def redis_now(client) -> float:
    """Redis's clock (``TIME``), the one every process compares unacked scores with."""
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


# kombu's ack (ZREM + HDEL) as one script of commands Redis runs at maxmemory: kombu sends
# them in MULTI/EXEC, and Redis refuses every command queued in a MULTI when memory is full.
_ACK = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
"""


class NotRecorded(Exception):
    """Redis refused (or could not take) the write that records a popped message: its
    unacked record or its dead letter. The message is still in ``<queue>.inflight``."""

    def __init__(self, cause: BaseException, doing: str):
        super().__init__(f"{doing}: {type(cause).__name__}: {cause}")
        self.cause = cause
        self.doing = doing


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
    # A binary body without the transport's base64 (body_encoding null) is kombu's typed
    # JSON, {"__type__": "base64", ...}, which kombu's loads turns into bytes.
    if payload.get("body") is not None and not isinstance(payload["body"], (str, bytes)):
        raise ValueError("not a kombu envelope: 'body' must be a string")
    for key in ("content-type", "content-encoding"):
        if payload.get(key) is not None and not isinstance(payload[key], str):
            raise ValueError(f"not a kombu envelope: {key!r} must be a string")
    return payload


def _left_in_unacked(exc: BaseException, doing: str, delivery_tag: str) -> None:
    WAIT.failed(exc, doing)
    logger.warning("%s of %s failed, Redis unavailable (%s: %s): it stays in unacked and is "
                   "redelivered after the visibility timeout", doing, delivery_tag, type(exc).__name__, exc)


class QoS(kredis.QoS):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: Tags whose unacked record the task's own transaction removed (apps/worker/tasks.py).
        self._acked_in_redis: set[str] = set()

    def append(self, message, delivery_tag):
        """Record the message as unacked and drop its inflight copy in one transaction
        (nothing to write when the pop script recorded it)."""
        if self.channel._pending_recorded is not None:
            self.channel._pending_recorded = None
            return virtual.QoS.append(self, message, delivery_tag)
        inflight = self.channel._pending_inflight
        if inflight is None:
            return super().append(message, delivery_tag)
        key, item = inflight
        # Pure work first: a payload without delivery_info/exchange/routing_key fails
        # here, while _pending_inflight still marks it as "not recorded" (dead-lettered).
        delivery = message.delivery_info
        record = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        self.channel._pending_inflight = None
        try:
            with self.channel.conn_or_acquire() as client:
                self.channel.record_script(keys=[self.unacked_index_key, self.unacked_key, key],
                                           args=[delivery_tag, record, item], client=client)
        except UNAVAILABLE as exc:
            # Nothing recorded (refused at its first write, or not sent), Celery has not seen it.
            raise NotRecorded(exc, "record") from exc
        # virtual.QoS bookkeeping (what kredis.QoS.append does after its pipeline).
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag):
        """Remove the unacked record (``HDEL`` + ``ZREM``, one script that runs at maxmemory).

        Refused anyway (a replica in a failover: ``READONLY``) or not sent (Redis out of
        reach): the message stays in ``unacked`` and is redelivered after the visibility
        timeout, a duplicate the task tolerates; this worker forgets it either way. A tag it
        kept would hold its prefetch slot for good, and with one slot per process the
        consumer would never pop again (seen after a 45 s outage that answered nothing)."""
        if delivery_tag in self._acked_in_redis:
            self._acked_in_redis.discard(delivery_tag)
            return virtual.QoS.ack(self, delivery_tag)
        try:
            with self.channel.conn_or_acquire() as client:
                self.channel.ack_script(keys=[self.unacked_key, self.unacked_index_key],
                                        args=[delivery_tag], client=client)
        except UNAVAILABLE as exc:
            _left_in_unacked(exc, "ack", delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def acked_in_redis(self, delivery_tag) -> None:
        """The task's own transaction removed this message's unacked record (with its
        result): its ack is this worker's bookkeeping only, no round trip."""
        self._acked_in_redis.add(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        """kombu's, with the ack above; a requeue Redis refuses or cannot take leaves the
        message in ``unacked`` (the sweep redelivers it after the visibility timeout), and
        this worker forgets it, as in ``ack``."""
        if not requeue:
            return self.ack(delivery_tag)
        try:
            self.restore_by_tag(delivery_tag, leftmost=True)
        except UNAVAILABLE as exc:
            _left_in_unacked(exc, "requeue", delivery_tag)
        virtual.QoS.ack(self, delivery_tag)

    def restore_unacked(self, client=None):
        """At channel close (shutdown, reconnect): kombu's, going on past a refused restore.
        What Redis refuses to put back stays in ``unacked`` for the sweep."""
        left = 0
        with self.channel.conn_or_acquire(client) as client:
            for tag in self._delivered:
                try:
                    self.restore_by_tag(tag, client=client)
                except UNAVAILABLE:
                    left += 1
        self._delivered.clear()
        if left:
            logger.warning("%d unacked message(s) could not be put back now (Redis unavailable): the "
                           "sweep redelivers them after the visibility timeout", left)

    def restore_visible(self, start=0, num=10, interval=10) -> int:
        """kombu's sweep with ``ZREVRANGEBYSCORE`` (kombu 5.7 sends 6.2's ``ZRANGE ...
        BYSCORE REV``), then the ``<queue>.inflight`` sweep. Same mutex, same throttle.
        Returns how many unacked messages it put back (0 if another sweeper held the mutex)."""
        self._vrestore_count += 1
        if (self._vrestore_count - 1) % (interval or 1):
            return 0
        restored = 0
        with self.channel.conn_or_acquire() as client:
            try:
                # Redis's clock, as the scores (_RECORD): this node's own may be off.
                ceil = redis_now(client) - self.visibility_timeout
                with kredis.Mutex(client, self.unacked_mutex_key, self.unacked_mutex_expire):
                    visible = client.zrevrangebyscore(
                        self.unacked_index_key, ceil, 0,
                        start=num and start, num=num, withscores=True)
                    for tag, _score in visible or []:
                        restored += self.restore_by_tag(tag, client)
            except kredis.MutexHeld:
                pass
            except REFUSED as exc:
                # The mutex (SET NX PX) or a restore (MULTI) refused: what is left stays in
                # unacked for the next sweep. Runs at connect too (kombu's on_poll_init).
                WAIT.failed(exc, "sweep")
        if restored:
            logger.warning("restored %d unacked message(s) older than the visibility timeout "
                           "(%gs): their worker died", restored, self.visibility_timeout)
        self.channel.restore_inflight()
        return restored

    def restore_by_tag(self, tag, client=None, leftmost=False) -> bool:
        """kombu's, returning whether this call put the message back (False: someone else did).
        A record that is not kombu's JSON (the pop script records a message before Python
        reads it, and its worker may die in between) is dead-lettered instead: kombu's raised."""

        def restore_transaction(pipe):
            raw = pipe.hget(self.unacked_key, tag)
            record = _record(raw) if raw else None
            if raw and record is None:
                try:
                    self.channel._dead_letter(bytes_to_str(raw), self.unacked_key,
                                              ValueError(f"unacked record {bytes_to_str(tag)!r} is not JSON"))
                except NotRecorded:
                    return False  # refused: the record stays for the next sweep
            pipe.multi()
            self._remove_from_indices(tag, pipe)
            if record is not None:
                message, exchange, routing_key = record
                self.channel._do_restore_message(message, exchange, routing_key, pipe, leftmost)
            return record is not None

        with self.channel.conn_or_acquire(client) as client:
            return client.transaction(restore_transaction, self.unacked_key, value_from_callable=True)


def _script(source: str) -> cached_property:
    """A channel attribute: ``source`` registered once per channel (redis-py's Script, which
    sends EVALSHA and loads the script again after NOSCRIPT)."""
    return cached_property(lambda channel: channel._create_client().register_script(source))


class Channel(redis_transport.Channel):
    QoS = QoS

    #: Redis list receiving messages that cannot be decoded, and its bounds (transport
    #: options, from DEAD_LETTER_MAX_LENGTH / DEAD_LETTER_MAX_ENTRY_BYTES).
    dead_letter_list: str | None = None
    dead_letter_max_length: int = 1000
    dead_letter_max_entry_bytes: int = 16384

    from_transport_options = (*kredis.Channel.from_transport_options,  # type: ignore[assignment]  # kombu's, longer
                              "dead_letter_list", "dead_letter_max_length", "dead_letter_max_entry_bytes")

    _pop_key: str | None = None
    #: The pop sent: the script (queue not known empty) or the blocking BRPOPLPUSH.
    _pop_blocking = False
    _pop_sent_blocking = False
    _pending_inflight: tuple[str, bytes] | None = None
    #: Delivery tag the pop script recorded, until QoS.append has seen the message.
    _pending_recorded: str | None = None
    #: monotonic time before which no pop is sent (Redis refused the last one).
    _pop_paused_until: float = 0.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._inflight_seen: dict[bytes, float] = {}

    _refresh_binding = _script(REFRESH_BINDING_6_0)
    record_script = _script(_RECORD)
    pop_script = _script(_POP_AND_RECORD)
    unrecord_script = _script(_UNRECORD)
    ack_script = _script(_ACK)

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
        if time.monotonic() < self._pop_paused_until:
            return  # waiting for Redis: the timer _pause set wakes the event loop
        self._pop_key = key
        self._in_poll = self.client.connection
        self._brpop_sent_at = time.monotonic()  # type: ignore[assignment]  # kombu's, declared None
        self._pop_sent_blocking = self._pop_blocking
        if self._pop_blocking:
            self.client.connection.send_command(POP_COMMAND, key, key + INFLIGHT_SUFFIX, timeout or 0)
        else:
            self.client.connection.send_command(
                "EVALSHA", self.pop_script.sha, 4, key, self.unacked_index_key, self.unacked_key,
                key + INFLIGHT_SUFFIX, f',"",{dumps(key)}]')

    def _brpop_read(self, **options):
        key = self._pop_key
        if key is None:
            return super()._brpop_read(**options)
        blocking = self._pop_sent_blocking
        try:
            try:
                item = self.client.parse_response(self.client.connection,
                                                  POP_COMMAND if blocking else "EVALSHA", **options)
            except NoScriptError:
                # Redis restarted or failed over since the script was loaded.
                with self.conn_or_acquire() as client:
                    client.script_load(_POP_AND_RECORD)
                raise Empty() from None
            except REFUSED as exc:
                # A reply on a working connection (OOM, READONLY, LOADING, MASTERDOWN):
                # nothing was popped. Wait, then pop again; no reconnect.
                self._pause(exc, "pop")
                raise Empty() from None
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            WAIT.succeeded()
            # Empty: block on the next pop. A message: the script again.
            self._pop_blocking = item is None
            if item is None:
                raise Empty()
            if not blocking and len(item) == 2:
                return self._take_recorded(key, item[0], bytes_to_str(item[1]))
            if not blocking:
                item = item[0]
            inflight = key + INFLIGHT_SUFFIX
            try:
                return self._take(key, inflight, item)
            except NotRecorded as exc:
                self._put_back(inflight, key, item)
                self._pause(exc.cause, exc.doing)
                raise Empty() from None
        finally:
            self._pending_recorded = None
            self._pending_inflight = None
            self._in_poll = None  # type: ignore[assignment]  # kombu's, declared False
            self._pop_key = None
            self._flush_brpop_reauth()

    def _take(self, key: str, inflight: str, item: bytes) -> bool:
        """Hand a popped message to Celery (QoS.append records it first), or dead-letter it.
        Raises ``NotRecorded`` when Redis refuses either write: the message is still in
        ``inflight``."""
        raw = bytes_to_str(item)
        payload: dict | None
        try:
            payload = check_envelope(loads(raw))
        except Exception as exc:  # noqa: BLE001 - anything here is a bad payload
            self._dead_letter(raw, key, exc)
            payload = None
        if payload is not None:
            queue = key.rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            # QoS.append records the message as unacked and removes the inflight
            # copy in one MULTI/EXEC, before Celery sees the message.
            self._pending_inflight = (inflight, item)
            try:
                self.connection._deliver(payload, queue)
            except NotRecorded:
                raise
            except Exception as exc:
                if self._pending_inflight is None:
                    # QoS.append was reached and recorded it: an error in Celery's own
                    # handling. Not a payload problem.
                    raise
                # Nothing but kombu building its Message and QoS.append's own field
                # lookups run before the Redis write, and they do no I/O: this
                # payload is not a kombu envelope (no properties, no delivery tag,
                # no delivery_info, bad body encoding...). Note that kombu
                # counts KeyError as a connection error: re-raising it would make
                # Celery reconnect and the sweep redeliver it, forever.
                self._dead_letter(raw, key, exc)
                payload = None
        if payload is None or self._pending_inflight is not None:
            # Dead-lettered, or not appended (no consumer: kombu requeued it).
            with self.conn_or_acquire() as client:
                client.lrem(inflight, 1, item)
        if payload is None:
            raise Empty()
        return True

    def _take_recorded(self, key: str, item: bytes, tag: str) -> bool:
        """Hand a message the pop script recorded in ``unacked`` to Celery, or dead-letter
        it (and drop its record). A dead letter Redis refuses puts it back in the queue."""
        raw = bytes_to_str(item)
        try:
            payload = check_envelope(loads(raw))
            if payload["properties"]["delivery_tag"] != tag:
                raise ValueError(f"its delivery tag is not {tag!r}, the one its text names")
        except Exception as exc:  # noqa: BLE001 - anything here is a bad payload
            self._drop_recorded(raw, key, tag, exc)
        queue = key.rsplit(self.sep, 1)[0]
        self._queue_cycle.rotate(queue)
        self._pending_recorded = tag
        try:
            self.connection._deliver(payload, queue)  # QoS.append writes nothing: no NotRecorded
        except Exception as exc:
            if self._pending_recorded is None:
                raise  # Celery's own handling failed after QoS.append: not the payload
            self._drop_recorded(raw, key, tag, exc)  # kombu could not build its Message
        if self._pending_recorded is not None:
            # Delivered without QoS.append (a consumer without acks): no ack will come.
            self._unrecord(key, tag, None)
        return True

    def _drop_recorded(self, raw: str, key: str, tag: str, exc: Exception) -> NoReturn:
        """Dead-letter a recorded message and drop its record; raises Empty either way."""
        try:
            self._dead_letter(raw, key, exc)
        except NotRecorded as refused:
            self._unrecord(key, tag, raw)
            self._pause(refused.cause, refused.doing)
            raise Empty() from None
        self._unrecord(key, tag, None)
        raise Empty()

    def _unrecord(self, key: str, tag: str, raw: str | None) -> None:
        """Remove a record the pop script made; with ``raw``, the message goes back to the
        queue's pop end. Not reachable now: it stays in unacked, for the sweep."""
        try:
            with self.conn_or_acquire() as client:
                if raw is None:
                    self.ack_script(keys=[self.unacked_key, self.unacked_index_key], args=[tag], client=client)
                else:
                    self.unrecord_script(keys=[self.unacked_key, self.unacked_index_key, key],
                                         args=[tag, raw], client=client)
        except UNAVAILABLE as exc:
            _left_in_unacked(exc, "put back" if raw is not None else "drop", tag)

    def _pause(self, exc: BaseException, doing: str) -> None:
        """No pop for the backoff delay; a timer wakes the event loop when it ends."""
        delay = WAIT.failed(exc, doing)
        self._pop_paused_until = time.monotonic() + delay
        loop = getattr(self.connection, "event_loop", None)
        if loop is not None:
            loop.call_later(delay, _wake)

    def _put_back(self, inflight: str, key: str, item: bytes) -> None:
        """Move a popped, unrecorded message from ``inflight`` back to where the next pop
        takes it. The script's first write is LREM, so Redis runs it at maxmemory; if even
        that fails (connection lost), the inflight sweep restores it after the visibility timeout."""
        try:
            with self.conn_or_acquire() as client:
                client.eval(_RESTORE_INFLIGHT, 2, inflight, key, item)
        except UNAVAILABLE:
            logger.warning("could not put a popped message back from %s now: the inflight sweep "
                           "restores it after the visibility timeout", inflight)

    def _dead_letter(self, raw: str, queue_key: str, exc: Exception) -> None:
        """Push to the dead-letter list; ``NotRecorded`` when Redis refuses the push (the
        message then goes back to the queue and is dead-lettered once Redis accepts)."""
        reason = f"undecodable message: {type(exc).__name__}: {exc}"
        logger.error("dead-lettering message from %s: %s", queue_key, reason[:500])
        if self.dead_letters is not None:
            try:
                with self.conn_or_acquire() as client:
                    self.dead_letters.push(client, reason, raw, queue=queue_key, stage="transport")
            except UNAVAILABLE as push_exc:
                raise NotRecorded(push_exc, "dead-letter") from push_exc
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


def _record(raw: bytes) -> tuple[dict, str, str] | None:
    """kombu's unacked record ``[message, exchange, routing key]``, or None if it is not one."""
    try:
        message, exchange, routing_key = loads(bytes_to_str(raw))
    except Exception:  # noqa: BLE001 - not kombu's record, whatever the reason
        return None
    return (message, exchange, routing_key) if isinstance(message, dict) else None


def _wake() -> None:
    """A timer entry's body: firing it is what makes the event loop tick (and pop)."""


class Transport(redis_transport.Transport):
    Channel = Channel
    #: The worker's event loop (kombu's hub), for the timer that ends a pause.
    event_loop = None

    def register_with_event_loop(self, connection, loop):
        self.event_loop = loop
        return super().register_with_event_loop(connection, loop)
