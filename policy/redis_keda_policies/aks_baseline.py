"""The AKS secure baseline's policies: a closed API server, the add-ons that guard and watch
the cluster, an audit trail for every Azure resource the stack creates, planned
maintenance, and the operational settings the baseline recommends. Resource types and
property names are azure-native v3's (docs/security.md maps each to the baseline and CIS)."""

from __future__ import annotations

from pulumi_policy import (
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from redis_keda_policies.azure import ADVISORY, AKS, CACHE_REDIS, MANAGED_REDIS_DB, MANDATORY, _where

WORKSPACE = "azure-native:operationalinsights:Workspace"
REGISTRY = "azure-native:containerregistry:Registry"
DIAGNOSTIC_SETTING = "azure-native:monitor:DiagnosticSetting"
MAINTENANCE = "azure-native:containerservice:MaintenanceConfiguration"
#: Resource type -> the log categories its diagnostic setting must send (the audit trail).
AUDIT_CATEGORIES = {
    AKS: ("kube-audit-admin", "guard"),
    REGISTRY: ("ContainerRegistryLoginEvents",),
    CACHE_REDIS: ("MSEntraAuthenticationAuditLog",),
    MANAGED_REDIS_DB: ("ConnectionEvents",),
}
UPGRADE_WINDOWS = ("aksManagedAutoUpgradeSchedule", "aksManagedNodeOSUpgradeSchedule")
OPEN = ("0.0.0.0/0", "0.0.0.0")


def _api_server(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != AKS:
        return
    access = args.props.get("apiServerAccessProfile") or {}
    ranges = list(access.get("authorizedIPRanges") or [])
    if access.get("enablePrivateCluster") is not True and (not ranges or any(r in OPEN for r in ranges)):
        report(f"{_where(args)}: close the API server: apiServerAccessProfile.authorizedIPRanges with your and CI's "
               f"CIDRs (not 0.0.0.0/0), or enablePrivateCluster: true (got {ranges or 'no ranges'}).", None)
    elif access.get("disableRunCommand") is not True:
        report(f"{_where(args)}: set apiServerAccessProfile.disableRunCommand: true (run command reaches the "
               "cluster around the API server's network rules).", None)


def _add_ons(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != AKS:
        return
    addons = args.props.get("addonProfiles") or {}
    if (addons.get("azurepolicy") or {}).get("enabled") is not True:
        report(f"{_where(args)}: enable addonProfiles.azurepolicy (Azure Policy guards what is applied outside "
               "Pulumi).", None)
    oms = addons.get("omsagent") or {}
    config = oms.get("config") or {}
    if oms.get("enabled") is not True or not config.get("logAnalyticsWorkspaceResourceID") \
            or config.get("useAADAuth") != "true":
        report(f"{_where(args)}: enable addonProfiles.omsagent with logAnalyticsWorkspaceResourceID and "
               "useAADAuth: \"true\" (container logs, signed in with Entra).", None)


def _operations(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != AKS:
        return
    problems = []
    if (args.props.get("sku") or {}).get("tier") == "Free":
        problems.append("sku.tier Standard or Premium (the Free tier has no API server SLA)")
    if ((args.props.get("securityProfile") or {}).get("imageCleaner") or {}).get("enabled") is not True:
        problems.append("securityProfile.imageCleaner.enabled: true")
    pools = [p.get("name") for p in args.props.get("agentPoolProfiles") or [] if not p.get("availabilityZones")]
    if pools:
        problems.append(f"availabilityZones on every node pool (none on {', '.join(map(str, pools))})")
    if problems:
        report(f"{_where(args)}: set {'; '.join(problems)}.", None)


def _workspace(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == WORKSPACE and (args.props.get("features") or {}).get("disableLocalAuth") is not True:
        report(f"{_where(args)}: set features.disableLocalAuth: true (agents sign in with Entra; no shared keys "
               "that write into the audit log).", None)


def _registry(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == REGISTRY and args.props.get("adminUserEnabled") is not False:
        report(f"{_where(args)}: set adminUserEnabled: false (the admin user is a shared, static password; pull "
               "with the kubelet identity, push with Entra).", None)


def _audit_trail(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every resource with an audit log sends it: a diagnostic setting with its categories
    for each one (counted: at preview the setting's resourceUri is not known yet)."""
    sent: list[set[str]] = [
        {log.get("category") for log in (r.props.get("logs") or []) if log.get("enabled")}
        for r in args.resources if r.resource_type == DIAGNOSTIC_SETTING]
    for type_, categories in AUDIT_CATEGORIES.items():
        names = [r.name for r in args.resources if r.resource_type == type_]
        covering = [s for s in sent if set(categories) <= s]
        if len(covering) < len(names):
            report(f"{type_.rsplit(':', 1)[-1]} {', '.join(names)}: add a diagnostic setting per resource sending "
                   f"{', '.join(categories)} to a Log Analytics workspace ({len(covering)} for {len(names)}).", None)


def _maintenance(args: StackValidationArgs, report: ReportViolation) -> None:
    clusters = [r.name for r in args.resources if r.resource_type == AKS]
    windows = [r.props.get("configName") for r in args.resources if r.resource_type == MAINTENANCE]
    for window in UPGRADE_WINDOWS:
        if windows.count(window) < len(clusters):
            report(f"ManagedCluster {', '.join(clusters)}: add a MaintenanceConfiguration {window} (upgrades "
                   "otherwise start at any time).", None)


AKS_BASELINE_POLICIES = [
    ResourceValidationPolicy(
        name="aks-api-server-access",
        description="AKS: the API server answers authorized ranges (not 0.0.0.0/0) or the VNet only; run command off.",
        validate=_api_server, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="aks-add-ons", description="AKS: the Azure Policy add-on, and the monitoring add-on signed in with Entra.",
        validate=_add_ons, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="aks-operations", description="AKS: Standard or Premium tier, image cleaner, zones on every node pool.",
        validate=_operations, enforcement_level=ADVISORY),
    ResourceValidationPolicy(
        name="log-analytics-entra-only", description="Log Analytics: no shared-key (local auth) ingestion.",
        validate=_workspace, enforcement_level=MANDATORY),
    ResourceValidationPolicy(
        name="acr-admin-user-disabled", description="Container registry: no admin user.",
        validate=_registry, enforcement_level=MANDATORY),
    StackValidationPolicy(
        name="azure-audit-trail",
        description="The cluster, the registry and Redis each send their audit logs to Log Analytics.",
        validate=_audit_trail, enforcement_level=MANDATORY),
    StackValidationPolicy(
        name="aks-maintenance-windows",
        description="AKS: cluster and node-OS upgrades only in planned maintenance windows.",
        validate=_maintenance, enforcement_level=ADVISORY),
]
