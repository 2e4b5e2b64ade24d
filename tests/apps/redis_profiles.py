"""Redis *server profiles*: a real ``redis-server`` configured to answer like each Redis the
stacks can give the apps (docs/redis-targets.md).

- ``local``: the in-cluster Redis of the kind stack: plain TCP, password.
- ``azure-cache``: Azure Cache for Redis "6" (Redis 6.0.14): TLS only on its own port,
  password, every command and subcommand newer than 6.0 unknown, and the admin commands
  Azure blocks disabled.
- ``azure-managed``: Azure Managed Redis (NoCluster): TLS only on its own port, password,
  the admin commands Azure blocks disabled.

"Newer than 6.0" is read from the installed server's own ``COMMAND DOCS`` (every command
and subcommand carries its ``since`` version), not from a hand-written list.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.apps.redis_docs import commands_newer_than_oldest, subcommands_newer_than_oldest

#: Commands Azure's managed Redis services refuse (both services); docs/redis-targets.md.
AZURE_BLOCKED = ("ACL", "BGREWRITEAOF", "BGSAVE", "CONFIG", "DEBUG", "MIGRATE", "MODULE",
                 "REPLICAOF", "SAVE", "SHUTDOWN", "SLAVEOF")


@dataclass(frozen=True)
class Profile:
    name: str
    tls: bool
    #: The port the real service listens on (documentation; tests pick free ports).
    service_port: int
    #: The server's command table hides these (``rename-command X ""``: "unknown command").
    blocked_admin: tuple[str, ...] = ()
    #: Also hide every command (and subcommand) that Redis 6.0 does not have.
    only_redis_6_0: bool = False

    def disabled_commands(self) -> list[str]:
        names = {c.upper() for c in self.blocked_admin}
        if self.only_redis_6_0:
            names |= {c.upper() for c in commands_newer_than_oldest()}
        return sorted(names)

    def denied_subcommands(self) -> list[str]:
        """``container|sub`` the default user may not run (ACL; rename-command cannot reach them)."""
        return subcommands_newer_than_oldest() if self.only_redis_6_0 else []

    def config_lines(self, password: str, admin_alias: str | None = None) -> list[str]:
        """redis.conf lines that give the server this profile's command surface and auth.
        ``admin_alias``: the disabled commands stay reachable to the harness under that
        prefix (``<alias>CONFIG``), to change a credential as Azure's control plane does;
        to the apps they are unknown all the same."""
        target = (lambda name: f'"{admin_alias}{name}"') if admin_alias else (lambda name: '""')
        lines = [f"rename-command {name} {target(name)}" for name in self.disabled_commands()]
        denied = " ".join(f"-{sub}" for sub in self.denied_subcommands())
        if denied:
            # The password through the ACL default user, so the same line can deny subcommands.
            lines.append(f"user default on >{password} ~* &* +@all {denied}")
        else:
            lines.append(f"requirepass {password}")
        return lines


PROFILES: dict[str, Profile] = {
    "local": Profile("local", tls=False, service_port=6379),
    "azure-cache": Profile("azure-cache", tls=True, service_port=6380, blocked_admin=AZURE_BLOCKED,
                           only_redis_6_0=True),
    "azure-managed": Profile("azure-managed", tls=True, service_port=10000, blocked_admin=AZURE_BLOCKED),
}
PROFILE_NAMES = tuple(PROFILES)
