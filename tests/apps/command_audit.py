"""Record every command the apps send to the test servers (``MONITOR``) and flag any command
or argument form that Redis 6.0 (Azure Cache for Redis 6.0.14) does not have.

Every :class:`~tests.apps.redis_server.RedisServer` the tests start has a ``MONITOR``
connection that feeds :data:`AUDIT`. The tests' own clients (``RedisServer.client()``)
use the server's Unix socket and are left out: the harness may simulate what a worker
did. The apps connect over TCP (``RedisServer.env``). Commands run by Lua scripts are
reported as from ``lua`` and audited (only the apps run scripts).

What is "newer than 6.0" comes from the server's ``COMMAND DOCS`` (tests/apps/redis_docs.py):
- a command or subcommand whose ``since`` is after 6.0 (``BLMOVE``, ``GETDEL``, ``CLIENT INFO``);
- a keyword argument (token) whose ``since`` is after 6.0 (``SET ... GET``, ``ZADD ... GT``,
  ``EXPIRE ... NX``, ``SET ... PXAT``), looked for after the command's leading positional
  arguments (so a key or value that happens to read ``GET`` is not one);
- a positional argument without a keyword whose ``since`` is after 6.0 (``LPOP key count``),
  recognised by the number of arguments;
- the few changes the docs record only in a command's history (:data:`HISTORY_RULES`).
"""

from __future__ import annotations

import codecs
import functools
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import redis

from tests.apps.redis_docs import Doc, command_docs, newer_than_oldest

#: MONITOR's client field for Unix-socket clients: the harness (never audited).
HARNESS_PREFIX = "unix:"

_LINE = re.compile(r"^\d+\.\d+ \[\d+ (?P<client>[^\]]+)\] (?P<args>.*)$", re.S)
_ARG = re.compile(r'"((?:[^"\\]++|\\.)*+)"', re.S)  # possessive: linear on any input


def parse_monitor_line(line: str) -> tuple[str, list[str]] | None:
    """``(client, args)`` from one MONITOR line (client ``ip:port`` or ``lua``), or None."""
    m = _LINE.match(line)
    if not m:
        return None
    return m.group("client"), [_unescape(a) for a in _ARG.findall(m.group("args"))]


def _unescape(text: str) -> str:
    """Undo Redis's ``sdscatrepr``: ``\\\\``, ``\\"``, ``\\n``, ``\\r``, ``\\t``, ``\\a``,
    ``\\b`` and ``\\xHH`` for every other byte that is not printable ASCII (one byte, one
    character: latin-1). Python's own escape decoder reads exactly these, in C: the suite
    parses every command the apps send, 16 kB values included."""
    if "\\" not in text:
        return text
    return codecs.escape_decode(text.encode("latin-1"))[0].decode("latin-1")


# ---- what is newer than 6.0 -------------------------------------------------------------------
def _since(doc: Doc) -> str | None:
    return doc.get("since")


def _newer_tokens(arguments: Iterable[Doc], inherited: str | None = None) -> dict[str, str]:
    """Keyword tokens (upper case) introduced after 6.0 -> the version, at any depth."""
    out: dict[str, str] = {}
    for arg in arguments or ():
        since = _since(arg) or inherited
        token = arg.get("token")
        if token and newer_than_oldest(since):
            out[token.upper()] = since
        out.update(_newer_tokens(arg.get("arguments") or (), since if newer_than_oldest(since) else None))
    return out


def _is_plain_positional(arg: Doc) -> bool:
    flags = set(arg.get("flags") or ())
    return not arg.get("token") and not flags & {"optional", "multiple", "multiple_token"} \
        and arg.get("type") not in ("block", "oneof", "pure-token")


def _leading_positionals(arguments: Sequence[Doc]) -> int:
    n = 0
    for arg in arguments:
        if not _is_plain_positional(arg):
            break
        n += 1
    return n


def _newer_positional(arguments: Sequence[Doc]) -> tuple[int, str] | None:
    """(index, since) of a keyword-less argument added after 6.0 right after plain
    positionals (``LPOP key [count]``): present iff there are more than ``index`` args."""
    for i, arg in enumerate(arguments):
        if not arg.get("token") and arg.get("type") != "pure-token" and newer_than_oldest(_since(arg)):
            return i, _since(arg)
        if not _is_plain_positional(arg):
            return None
    return None


# Changes that COMMAND DOCS records only in a command's history, not on an argument.
HistoryRule = Callable[[list[str]], str | None]
HISTORY_RULES: dict[str, HistoryRule] = {
    "info": lambda a: "INFO with several sections (7.0.0)" if len(a) > 1 else None,
    "hello": lambda a: "HELLO without protover (6.2.0)" if not a else None,
    "command|info": lambda a: "COMMAND INFO without a command name (7.0.0)" if not a else None,
    "config|get": lambda a: "CONFIG GET with several patterns (7.0.0)" if len(a) > 1 else None,
    "config|set": lambda a: "CONFIG SET with several parameters (7.0.0)" if len(a) > 2 else None,
}


def check_command(args: Sequence[str], docs: dict[str, Doc] | None = None) -> str | None:
    """Why ``args`` (a whole command) needs a Redis newer than 6.0, or None if 6.0 has it."""
    if not args:
        return None
    if docs is None:
        docs, forms = command_docs(), _cached_forms
    else:
        forms = functools.partial(_forms, docs)
    name = args[0].lower()
    doc = docs.get(name)
    if doc is None:
        return f"unknown to this redis-server ({args[0]})"
    rest = list(args[1:])
    subcommands = doc.get("subcommands") or {}
    if subcommands and rest:
        sub = f"{name}|{rest[0].lower()}"
        if sub in subcommands:
            name, rest = sub, rest[1:]
    form = forms(name)
    if form.newer_since:
        return f"{form.label} (since {form.newer_since})"
    for word in rest[form.leading:]:
        if word.upper() in form.tokens:
            return f"{form.label} ... {word.upper()} (since {form.tokens[word.upper()]})"
    if form.positional is not None and len(rest) > form.positional[0]:
        return f"{form.label} with {form.positional_name} (since {form.positional[1]})"
    rule = HISTORY_RULES.get(name)
    return rule(rest) if rule else None


@dataclass(frozen=True)
class _Form:
    """What one (sub)command's docs say is newer than 6.0, worked out once per name."""

    label: str
    newer_since: str | None
    tokens: dict[str, str]
    leading: int
    positional: tuple[int, str] | None
    positional_name: str | None


def _forms(docs: dict[str, Doc], name: str) -> _Form:
    parent, _, _ = name.partition("|")
    doc = docs[parent] if parent == name else docs[parent]["subcommands"][name]
    arguments = doc.get("arguments") or []
    positional = _newer_positional(arguments)
    return _Form(label=name.upper().replace("|", " "),
                 newer_since=_since(doc) if newer_than_oldest(_since(doc)) else None,
                 tokens=_newer_tokens(arguments), leading=_leading_positionals(arguments),
                 positional=positional,
                 positional_name=arguments[positional[0]]["name"] if positional is not None else None)


@functools.cache
def _cached_forms(name: str) -> _Form:
    return _forms(command_docs(), name)


# ---- recording ----------------------------------------------------------------------------------
@dataclass
class CommandAudit:
    """What the apps sent, per server profile: command names, and every form newer than 6.0.

    Thread-safe (one MONITOR thread per server). Each command is checked as it arrives and
    only its name (and, for a problem, one example) is kept, so a long suite stays small.
    """

    names: Counter = field(default_factory=Counter)  # (profile, COMMAND) -> count
    problems: dict = field(default_factory=dict)  # why -> {"count", "profiles", "example"}
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, profile: str, client: str, args: list[str]) -> None:
        if not args or client.startswith(HARNESS_PREFIX):
            return
        why = check_command(args)
        with self._lock:
            self.names[(profile, args[0].upper())] += 1
            if why is not None:
                entry = self.problems.setdefault(why, {"count": 0, "profiles": set(),
                                                       "example": " ".join(args)[:160]})
                entry["count"] += 1
                entry["profiles"].add(profile)

    def violations(self) -> list[str]:
        """One line per distinct problem: what, how often, on which profiles, an example."""
        with self._lock:
            items = sorted((why, dict(e, profiles=set(e["profiles"]))) for why, e in self.problems.items())
        return [f"{why}: {e['count']}x on {', '.join(sorted(e['profiles']))}; e.g. {e['example']}"
                for why, e in items]

    def commands(self, profile: str | None = None) -> set[str]:
        with self._lock:
            return {name for (p, name) in self.names if profile in (None, p)}


AUDIT = CommandAudit()


class Monitor:
    """A ``MONITOR`` connection feeding ``audit`` from a daemon thread until the server stops."""

    def __init__(self, client_kwargs: dict, profile: str, audit: CommandAudit = AUDIT):
        self._client = redis.Redis(**client_kwargs, socket_timeout=None)
        self._conn = self._client.connection_pool.get_connection()
        self._conn.send_command("MONITOR")
        if str(self._conn.read_response()) not in ("OK", "b'OK'"):
            raise RuntimeError("MONITOR refused")
        self.profile = profile
        self.audit = audit
        self._thread = threading.Thread(target=self._run, name=f"monitor-{profile}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                line = self._conn.read_response()
            except (redis.RedisError, OSError, ValueError, AttributeError):
                return  # the server stopped or the connection was closed
            text = line.decode("latin-1") if isinstance(line, bytes) else str(line)
            parsed = parse_monitor_line(text)
            if parsed is not None:
                self.audit.record(self.profile, *parsed)

    def close(self, timeout: float = 5.0) -> None:
        try:
            self._conn.disconnect()
        except (redis.RedisError, OSError):
            pass
        self._thread.join(timeout)
