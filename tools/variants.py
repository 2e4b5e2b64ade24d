"""The stack variants the tests render and ``make scan`` scans: each stack with each worker
mode and read path, and the Azure Cache for Redis variant of aks; the network flow table
also covers them without monitoring and with the cache API open to the cluster.

``python -m tools.variants`` prints one per line: ``<id> <stack> key=value ...``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    id: str
    stack: str
    settings: tuple[tuple[str, str], ...]

    @property
    def args(self) -> list[str]:
        out = ["--stack", self.stack]
        for key, value in self.settings:
            out += ["--set", f"{key}={value}"]
        return out

    def setting(self, key: str) -> str | None:
        return dict(self.settings).get(key)


def _variant(stack: str, mode: str, read_path: str) -> Variant:
    suffix = "" if read_path == "central" else "-sidecar"
    return Variant(f"{stack}-{mode}{suffix}", stack, (("workerMode", mode), ("cacheApiReadPath", read_path)))


VARIANTS: tuple[Variant, ...] = tuple(
    _variant(stack, mode, read_path)
    for stack in ("local", "aks")
    for read_path in ("central", "replica-sidecar")
    for mode in ("deployment", "job")
    if not (stack == "aks" and read_path == "replica-sidecar")
) + (
    # aks with Azure Cache for Redis instead of the default Azure Managed Redis.
    Variant("aks-deployment-classic", "aks", (("workerMode", "deployment"), ("cacheApiReadPath", "central"),
                                              ("azureRedis", "classic"))),
)
VARIANT_IDS = [v.id for v in VARIANTS]
#: Keys a committed stack file leaves for the deployer to set (``pulumi up`` refuses to run
#: without them), and the value an offline render uses in their place: a documentation
#: range (RFC 5737 TEST-NET-3), reachable by nobody.
RENDER_PLACEHOLDERS: dict[str, str] = {"apiServerAuthorizedIpRanges": "203.0.113.0/24"}
#: The same variants with monitoring off (the network flow table covers both).
NO_MONITORING: tuple[Variant, ...] = tuple(
    Variant(f"{v.id}-nomon", v.stack, v.settings + (("monitoring", "false"),)) for v in VARIANTS)
#: The cache API open to any pod (cacheApiCallers: cluster), for the network flow table.
OPEN_API: tuple[Variant, ...] = (
    Variant("local-deployment-open-api", "local", (("workerMode", "deployment"), ("cacheApiReadPath", "central"),
                                                   ("cacheApiCallers", "cluster"))),)
NETWORK_VARIANT_IDS = VARIANT_IDS + [v.id for v in NO_MONITORING] + [v.id for v in OPEN_API]
BY_ID = {v.id: v for v in VARIANTS + NO_MONITORING + OPEN_API}


if __name__ == "__main__":
    for v in VARIANTS:
        print(v.id, v.stack, *(f"{k}={val}" for k, val in v.settings))
