"""The fixtures themselves: real servers that answer like each target, and an audit that can fail."""

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.apps.command_audit import CommandAudit, check_command, parse_monitor_line
from tests.apps.redis_docs import commands_newer_than_oldest, subcommands_newer_than_oldest
from tests.apps.redis_profiles import AZURE_BLOCKED
from tests.apps.redis_server import RedisServer

NO_RETRY = Retry(NoBackoff(), 0)  # a refused connection must fail now, not after backoff


def test_plain_server_round_trip(redis_server):
    with redis_server.client() as c:
        c.set("k", "v")
        assert c.get("k") == b"v"


def test_tls_server_verifies_certificate(redis_tls):
    with redis_tls.client() as c:
        assert c.ping() is True
    # Without the CA the handshake must fail: verification is really on.
    bad = redis.Redis(host="127.0.0.1", port=redis_tls.port, password=redis_tls.password,
                      ssl=True, ssl_cert_reqs="required", socket_timeout=2, retry=NO_RETRY)
    with pytest.raises(redis.ConnectionError):
        bad.ping()


def _fails(client: redis.Redis, *command: str) -> str:
    with pytest.raises(redis.ResponseError) as err:
        client.execute_command(*command)
    return str(err.value)


def test_newer_than_6_0_is_read_from_the_servers_own_docs():
    newer = set(commands_newer_than_oldest())
    assert {"blmove", "lmove", "getdel", "getex", "lmpop", "zrangestore"} <= newer
    assert not {"brpoplpush", "brpop", "lpush", "set", "zadd", "eval", "hset"} & newer
    assert {"client|info", "client|no-evict"} <= set(subcommands_newer_than_oldest())


def test_every_profile_requires_the_password(redis_any):
    plain_or_tls = redis_any.tcp_client_kwargs() | {"password": None, "socket_timeout": 2, "retry": NO_RETRY}
    with pytest.raises(redis.AuthenticationError), redis.Redis(**plain_or_tls) as c:
        c.ping()


def test_azure_profiles_are_tls_only(redis_any):
    if redis_any.profile.name == "local":
        pytest.skip("the in-cluster Redis is plain TCP")
    with redis.Redis(host="127.0.0.1", port=redis_any.port, password=redis_any.password,
                     socket_timeout=2, socket_connect_timeout=2, retry=NO_RETRY) as c:
        with pytest.raises(redis.ConnectionError):
            c.ping()


def test_command_surface_of_each_profile(redis_any):
    name = redis_any.profile.name
    with redis_any.client(socket_timeout=5) as c:
        c.rpush("src", "a", "b")
        assert c.brpoplpush("src", "dst", 1) == b"b"  # the 6.0 form works everywhere
        if name == "azure-cache":
            assert "unknown command" in _fails(c, "BLMOVE", "src", "dst", "RIGHT", "LEFT", "1")
            assert "unknown command" in _fails(c, "GETDEL", "src")
            assert "no permissions" in _fails(c, "CLIENT", "INFO")
        else:
            assert c.blmove("src", "dst", 1, "RIGHT", "LEFT") == b"a"
        for admin in AZURE_BLOCKED if name != "local" else ():
            assert "unknown command" in _fails(c, admin, "x")
        if name == "local":
            assert c.config_get("maxmemory-policy")


@pytest.mark.parametrize("command, problem", [
    ("SET k v GET", "SET ... GET (since 6.2.0)"),
    ("SET k v PXAT 1", "SET ... PXAT (since 6.2.0)"),
    ("LPOP k 2", "LPOP with count (since 6.2.0)"),
    ("RPOP k 2", "RPOP with count (since 6.2.0)"),
    ("ZADD k GT 1 m", "ZADD ... GT (since 6.2.0)"),
    ("EXPIRE k 10 NX", "EXPIRE ... NX (since 7.0.0)"),
    ("ZRANGE k 5 0 BYSCORE REV", "ZRANGE ... BYSCORE (since 6.2.0)"),
    ("BLMOVE a b RIGHT LEFT 1", "BLMOVE (since 6.2.0)"),
    ("GETDEL k", "GETDEL (since 6.2.0)"),
    ("CLIENT INFO", "CLIENT INFO (since 6.2.0)"),
    ("INFO memory clients", "INFO with several sections (7.0.0)"),
    ("FLUSHALL SYNC", "FLUSHALL ... SYNC (since 6.2.0)"),
])
def test_audit_flags_forms_newer_than_6_0(command, problem):
    assert check_command(command.split()) == problem


@pytest.mark.parametrize("command", [
    "SET k v NX PX 100", "SET GET v", "SET k GET", "SET k v KEEPTTL", "LPOP k", "BRPOPLPUSH a b 1",
    "BRPOP a b 1", "ZADD k 1 m", "ZREVRANGEBYSCORE k 5 0 WITHSCORES LIMIT 0 10", "EXPIRE k 10",
    "INFO replication", "INFO", "CLIENT SETNAME x", "EVALSHA abc 1 k a", "HSET h a 1 b 2", "MULTI",
    "PUBLISH c m", "LREM k 1 v", "MGET a b", "PING",
])
def test_audit_accepts_what_redis_6_0_has(command):
    assert check_command(command.split()) is None


def test_monitor_lines_are_parsed_with_escapes():
    line = r'1700000000.123456 [0 127.0.0.1:5555] "SET" "a \"b\"" "\x00\n\\"'
    assert parse_monitor_line(line) == ("127.0.0.1:5555", ["SET", 'a "b"', "\x00\n\\"])
    assert parse_monitor_line('1700000000.1 [0 lua] "ZADD" "k" "GT" "1" "m"')[0] == "lua"


def test_monitor_lines_with_large_values_and_bytes_parse_whole():
    """What a burst or a fill sends: 16 kB values, and bytes outside ASCII (``\\xHH``, one
    character per byte); an unterminated line (a cut connection) is no match, not a hang."""
    value = "x" * 16384
    line = rf'1700000000.1 [0 lua] "SET" "filler:1" "{value}" "\xe2\x82\xac\t"'
    assert parse_monitor_line(line) == ("lua", ["SET", "filler:1", value, "\xe2\x82\xac\t"])
    assert parse_monitor_line('1700000000.1 [0 127.0.0.1:1] "SET" "' + "y\\" * 50_000) == ("127.0.0.1:1", ["SET"])


def test_audit_records_apps_and_scripts_not_the_harness(tmp_path):
    audit = CommandAudit()
    server = RedisServer(workdir=tmp_path / "audited", audit=audit).start()
    try:
        with redis.Redis(host="127.0.0.1", port=server.port, password=server.password) as app:
            app.set("k", "v", get=True)           # an app sending a 6.2 form
            app.eval("return redis.call('ZADD', KEYS[1], 'GT', 1, 'm')", 1, "z")  # inside Lua
            app.brpoplpush("none", "other", 0.01)  # fine on 6.0
        with server.client() as harness:
            harness.lmove("k2", "k3")               # the harness may simulate anything
        server.stop()  # closes the monitor after it has read everything
    finally:
        server.cleanup()
    problems = "\n".join(audit.violations())
    assert "SET ... GET (since 6.2.0): 1x on local" in problems
    assert "ZADD ... GT (since 6.2.0): 1x on local" in problems
    assert "LMOVE" not in problems and "BRPOPLPUSH" not in problems
    assert {"SET", "EVAL", "ZADD", "BRPOPLPUSH"} <= audit.commands()
    assert "LMOVE" not in audit.commands()


@pytest.mark.parametrize("profile", ["local", "azure-cache", "azure-managed"])
def test_limits_given_at_start_hold_on_every_profile(redis_factory, profile):
    """A full Redis on every profile: the limit is in redis.conf (the azure ones refuse CONFIG)."""
    server = redis_factory(profile=profile, settings={"maxmemory": "2mb", "maxmemory-policy": "noeviction",
                                                      "maxclients": "17"})
    with server.client() as c:
        assert c.info("memory")["maxmemory"] == 2 * 1024 * 1024
        assert c.info("clients")["maxclients"] == 17
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            for i in range(10_000):
                c.set(f"fill:{i}", "x" * 1024)
