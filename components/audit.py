"""The aks stack's audit trail: one Log Analytics workspace, and a diagnostic setting per
Azure resource that sends its logs (and metrics) there.

Which logs each resource sends (``DIAGNOSTICS``), by what Azure offers for its type:
the cluster the AKS baseline's categories (components/aks_baseline.py), Azure Managed Redis
its connection and authentication events (on the database), Azure Cache for Redis its
client list and Entra sign-ins, the registry its logins and pushes/pulls, a private
endpoint its metrics (it has no logs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native
from pulumi import Output, ResourceOptions

from components.aks_baseline import AKS_LOG_CATEGORIES


@dataclass(frozen=True)
class Diagnostics:
    logs: tuple[str, ...]
    """Log categories sent."""
    metrics: bool
    """Whether AllMetrics is sent too."""


#: Resource kind -> what its diagnostic setting sends.
DIAGNOSTICS: dict[str, Diagnostics] = {
    "cluster": Diagnostics(AKS_LOG_CATEGORIES, True),
    "managed-redis": Diagnostics((), True),
    "managed-redis-database": Diagnostics(("ConnectionEvents",), False),
    "classic-redis": Diagnostics(("ConnectedClientList", "MSEntraAuthenticationAuditLog"), True),
    "acr": Diagnostics(("ContainerRegistryLoginEvents", "ContainerRegistryRepositoryEvents"), True),
    "private-endpoint": Diagnostics((), True),
}
#: The name of every diagnostic setting the stack makes (one per resource, so one name).
SETTING_NAME = "redis-keda-platform-audit"


@dataclass(frozen=True, kw_only=True)
class AuditLogArgs:
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    retention_days: int = 30
    """Workspace retention (30..730)."""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 30 <= self.retention_days <= 730:
            raise ValueError("AuditLogArgs.retention_days must be 30..730")


class AuditLog(pulumi.ComponentResource):
    """A Log Analytics workspace (PerGB2018, no local-auth ingestion: agents sign in with Entra)."""

    workspace_id: Output[str]

    def __init__(self, name: str, args: AuditLogArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:AuditLog", name, None, opts)
        oi = azure_native.operationalinsights
        workspace = oi.Workspace(
            f"{name}-workspace",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=oi.WorkspaceSkuArgs(name=oi.WorkspaceSkuNameEnum.PER_GB2018),
            retention_in_days=args.retention_days,
            features=oi.WorkspaceFeaturesArgs(disable_local_auth=True),
            tags=dict(args.tags),
            opts=ResourceOptions(parent=self),
        )
        self.workspace_id = workspace.id
        self.register_outputs({"workspaceId": self.workspace_id})


def diagnostic_setting(name: str, kind: str, resource_id: pulumi.Input[str], workspace_id: pulumi.Input[str],
                       parent: pulumi.Resource) -> azure_native.monitor.DiagnosticSetting:
    """Send ``kind``'s logs (``DIAGNOSTICS``) from ``resource_id`` to the workspace."""
    what = DIAGNOSTICS[kind]
    mon = azure_native.monitor
    return mon.DiagnosticSetting(
        f"{name}-diagnostics",
        name=SETTING_NAME,
        resource_uri=resource_id,
        workspace_id=workspace_id,
        # One table per category (AKSAudit, ...) instead of the AzureDiagnostics catch-all.
        log_analytics_destination_type="Dedicated",
        logs=[mon.DiagnosticsLogSettingsArgs(category=c, enabled=True) for c in what.logs],
        metrics=[mon.DiagnosticsMetricSettingsArgs(category="AllMetrics", enabled=True)] if what.metrics else [],
        opts=ResourceOptions(parent=parent),
    )
