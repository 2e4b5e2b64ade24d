"""Clusters. Each exposes the same shape: ``provider`` (a pulumi_kubernetes Provider)
and ``kubeconfig`` (a secret Output). Workloads take only the provider."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_azure_native as azure_native
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml
from pulumi import Output, ResourceOptions

from components import aks_baseline, versions
from components.address_plan import (
    AKS_DNS_SERVICE_IP,
    AKS_POD_CIDR,
    AKS_SERVICE_CIDR,
    DEFAULT_ENDPOINT_SUBNET,
    DEFAULT_NODE_SUBNET,
    DEFAULT_VNET,
)
from components.audit import AuditLog, AuditLogArgs, diagnostic_setting
from components.azure_network import (
    AzureNetwork,
    AzureNetworkArgs,
)
from components.private_link import PrivateLink, PrivateLinkArgs

PRINCIPAL_TYPES = ("User", "ServicePrincipal", "Group")
# Built-in roles.
ACR_PULL_ROLE_ID = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
NETWORK_CONTRIBUTOR_ROLE_ID = "4d97b98b-1d4f-4787-a291-c67834d212e7"
AKS_RBAC_CLUSTER_ADMIN_ROLE_ID = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"


def _role_definition(role_id: str) -> Output[str]:
    sub = azure_native.authorization.get_client_config_output().subscription_id
    return Output.concat("/subscriptions/", sub, "/providers/Microsoft.Authorization/roleDefinitions/", role_id)


@dataclass(frozen=True, kw_only=True)
class KindClusterArgs:
    context: str
    """kubeconfig context of an existing kind cluster (``kind create cluster --name redis-keda`` -> ``kind-redis-keda``)."""
    kubeconfig_path: str | None = None
    """Optional kubeconfig file; default: the usual $KUBECONFIG / ~/.kube/config chain."""

    def __post_init__(self) -> None:
        if not self.context:
            raise ValueError("KindClusterArgs.context must not be empty")


class KindCluster(pulumi.ComponentResource):
    """An existing kind cluster: nothing is created but a Provider pinned to its context."""

    provider: k8s.Provider
    kubeconfig: Output[str]

    def __init__(self, name: str, args: KindClusterArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:KindCluster", name, None, opts)
        self.provider = k8s.Provider(
            f"{name}-k8s",
            context=args.context,
            kubeconfig=args.kubeconfig_path,
            enable_server_side_apply=True,
            delete_unreachable=False,
            opts=ResourceOptions(parent=self),
        )
        # No credential is read here: the "kubeconfig" of a kind stack is the context name
        # of the user's own kubeconfig. Still a secret so consumers treat both targets alike.
        self.kubeconfig = Output.secret(f"context: {args.context}")
        self.register_outputs({"kubeconfig": self.kubeconfig})


@dataclass(frozen=True, kw_only=True)
class AksClusterArgs:
    location: str
    """Azure region."""
    kubernetes_version: str
    """Pinned AKS Kubernetes version (control plane and node pools)."""
    system_node_vm_size: str = "Standard_D2s_v5"
    """System pool VM size."""
    system_node_count: int = 2
    """System pool node count (critical add-ons only, tainted)."""
    user_node_vm_size: str = "Standard_D4s_v5"
    """User pool VM size (the workloads)."""
    user_node_min_count: int = 1
    """User pool autoscaler minimum."""
    user_node_max_count: int = 5
    """User pool autoscaler maximum."""
    create_acr: bool = False
    """Create an Azure Container Registry and grant the kubelet identity AcrPull."""
    deployer_principal_type: str = "User"
    """principalType of the identity running ``pulumi up`` (User | ServicePrincipal | Group):
    Azure rejects a role assignment whose type does not match (``UnmatchedPrincipalType``)."""
    vnet_address_space: str = DEFAULT_VNET
    """The VNet created for the cluster (components/address_plan.py: the address plan)."""
    node_subnet_cidr: str = DEFAULT_NODE_SUBNET
    """The nodes' subnet."""
    endpoint_subnet_cidr: str = DEFAULT_ENDPOINT_SUBNET
    """The private endpoints' subnet (also the NetworkPolicy's Redis egress CIDR)."""
    node_subnet_id: str = ""
    """Bring-your-own network: an existing node subnet (with ``endpoint_subnet_id``)."""
    endpoint_subnet_id: str = ""
    """Bring-your-own network: an existing private endpoint subnet in the same VNet."""
    api_server_access: str = "authorized"
    """authorized (public endpoint, ``api_server_authorized_ip_ranges`` only) | private (private cluster)."""
    api_server_authorized_ip_ranges: str = ""
    """Comma-separated IPv4 CIDRs allowed to reach the API server (required when authorized)."""
    cluster_tier: str = "Standard"
    """AKS pricing tier: Free | Standard | Premium."""
    availability_zones: str = ""
    """Comma-separated zones of both node pools ("" = none)."""
    maintenance_day: str = "Sunday"
    """Weekday of the planned maintenance windows."""
    maintenance_start_hour: int = 2
    """UTC hour the cluster-upgrade window starts (node-OS upgrades: 4 hours later)."""
    log_retention_days: int = 30
    """Retention of the Log Analytics workspace."""
    defender_for_containers: bool = False
    """Defender for Containers: the cluster's sensor and the subscription's Containers plan."""
    acr_public_network_access: str = "Enabled"
    """Enabled | Disabled (Premium registry behind a private endpoint)."""

    def __post_init__(self) -> None:
        problems = aks_baseline.api_access_problems(self.api_server_access, self.api_server_authorized_ip_ranges,
                                                    "api_server_authorized_ip_ranges")
        problems += aks_baseline.zone_problems(self.availability_zones, "availability_zones")
        if problems:
            raise ValueError("AksClusterArgs: " + "; ".join(f"{k}: {m}" for k, m in problems))
        if self.api_server_access not in ("authorized", "private"):
            raise ValueError("AksClusterArgs.api_server_access must be authorized or private")
        if self.maintenance_day not in aks_baseline.WEEKDAYS:
            raise ValueError(f"AksClusterArgs.maintenance_day must be one of {aks_baseline.WEEKDAYS}")
        if not 0 <= self.maintenance_start_hour <= 23:
            raise ValueError("AksClusterArgs.maintenance_start_hour must be 0..23")
        if self.acr_public_network_access not in ("Enabled", "Disabled"):
            raise ValueError("AksClusterArgs.acr_public_network_access must be Enabled or Disabled")
        if self.deployer_principal_type not in PRINCIPAL_TYPES:
            raise ValueError(f"AksClusterArgs.deployer_principal_type must be one of {PRINCIPAL_TYPES}")
        if self.system_node_count < 1:
            raise ValueError("AksClusterArgs.system_node_count must be >= 1")
        if self.user_node_max_count < self.user_node_min_count:
            raise ValueError("AksClusterArgs.user_node_max_count must be >= user_node_min_count")


def _api_server_access(args: AksClusterArgs) -> azure_native.containerservice.ManagedClusterAPIServerAccessProfileArgs:
    """Who reaches the API server: the authorized ranges only, or the VNet only (private
    cluster, its DNS zone managed by AKS, no public FQDN). Run command (``az aks command
    invoke``, a way in that bypasses both) is off."""
    cs = azure_native.containerservice
    if args.api_server_access == "private":
        return cs.ManagedClusterAPIServerAccessProfileArgs(
            enable_private_cluster=True, enable_private_cluster_public_fqdn=False, private_dns_zone="system",
            disable_run_command=True)
    return cs.ManagedClusterAPIServerAccessProfileArgs(
        authorized_ip_ranges=aks_baseline.authorized_ranges(args.api_server_authorized_ip_ranges),
        disable_run_command=True)


def use_azure_cli_login(kubeconfig: str) -> str:
    """Make an exec (kubelogin) kubeconfig non-interactive: ``--login azurecli`` reuses the
    ``az login`` session of whoever runs pulumi (``kubelogin convert-kubeconfig -l azurecli``).
    The default ``devicecode`` would block ``pulumi up`` on a browser prompt."""
    doc = yaml.safe_load(kubeconfig)
    for user in doc.get("users") or []:
        exec_ = (user.get("user") or {}).get("exec")
        if not exec_ or "kubelogin" not in str(exec_.get("command", "")):
            continue
        args = list(exec_.get("args") or [])
        server_id = args[args.index("--server-id") + 1] if "--server-id" in args else None
        exec_["args"] = ["get-token", "--login", "azurecli"] + (["--server-id", server_id] if server_id else [])
        exec_["interactiveMode"] = "Never"
    return yaml.safe_dump(doc, sort_keys=False)


class AksCluster(pulumi.ComponentResource):
    """Resource group + AKS (managed identity, Azure RBAC for Kubernetes authorization with
    local accounts disabled, Cilium network policy, a closed API server, the audit log in a
    Log Analytics workspace, Azure Policy, planned maintenance) + optional ACR with AcrPull."""

    resource_group: azure_native.resources.ResourceGroup
    cluster: azure_native.containerservice.ManagedCluster
    provider: k8s.Provider
    kubeconfig: Output[str]
    acr_login_server: Output[str]
    """ACR login server, "" without createAcr."""
    log_workspace_id: Output[str]
    """The Log Analytics workspace every Azure resource of the stack sends its diagnostics to."""
    oidc_issuer_url: Output[str]
    """The cluster's OIDC issuer (workload identity federation)."""

    def __init__(self, name: str, args: AksClusterArgs, opts: ResourceOptions | None = None):
        super().__init__("redis-keda-platform:index:AksCluster", name, None, opts)
        self.resource_group = azure_native.resources.ResourceGroup(
            f"{name}-rg", location=args.location, tags=dict(versions.AZURE_TAGS), opts=ResourceOptions(parent=self)
        )
        # Azure RBAC: whoever runs `pulumi up` gets cluster-admin *through Entra ID* (no local
        # account); the Kubernetes provider authenticates via kubelogin. Granted on the
        # resource group (it holds this cluster only) *before* the cluster is created, so the
        # assignment has propagated by the time the cluster exists and the provider first
        # talks to it (granted on the cluster, it raced the provider: `Forbidden` on a first up).
        self.deployer_admin = azure_native.authorization.RoleAssignment(
            f"{name}-deployer-admin",
            principal_id=azure_native.authorization.get_client_config_output().object_id,
            principal_type=args.deployer_principal_type,
            role_definition_id=_role_definition(AKS_RBAC_CLUSTER_ADMIN_ROLE_ID),
            scope=self.resource_group.id,
            opts=ResourceOptions(parent=self),
        )
        self.network = AzureNetwork(f"{name}-network", AzureNetworkArgs(
            resource_group_name=self.resource_group.name,
            location=args.location,
            vnet_address_space=args.vnet_address_space,
            node_subnet_cidr=args.node_subnet_cidr,
            endpoint_subnet_cidr=args.endpoint_subnet_cidr,
            node_subnet_id=args.node_subnet_id,
            endpoint_subnet_id=args.endpoint_subnet_id,
            tags=versions.AZURE_TAGS,
        ), ResourceOptions(parent=self))
        self.audit = AuditLog(f"{name}-audit", AuditLogArgs(
            resource_group_name=self.resource_group.name, location=args.location,
            retention_days=args.log_retention_days, tags=versions.AZURE_TAGS), ResourceOptions(parent=self))
        self.log_workspace_id = self.audit.workspace_id
        self.cluster = self._create_cluster(name, args)
        diagnostic_setting(f"{name}-aks", "cluster", self.cluster.id, self.log_workspace_id, self)
        self.oidc_issuer_url = self.cluster.oidc_issuer_profile.apply(lambda p: (p.issuer_url if p else None) or "")
        self._maintenance_windows(name, args)
        if args.defender_for_containers:
            self._defender_plan(name)
        # The cluster's own identity manages load balancers and IPs in its node subnet (what
        # `az aks create --vnet-subnet-id` grants; ARM and Pulumi must do it themselves).
        azure_native.authorization.RoleAssignment(
            f"{name}-subnet-network-contributor",
            principal_id=self.cluster.identity.apply(lambda i: i.principal_id),
            principal_type="ServicePrincipal",
            role_definition_id=_role_definition(NETWORK_CONTRIBUTOR_ROLE_ID),
            scope=self.network.node_subnet_id,
            opts=ResourceOptions(parent=self),
        )
        wait_for: list[pulumi.Resource] = [self.deployer_admin]
        self.acr_login_server = Output.from_input("")
        if args.create_acr:
            self.acr_login_server, acr_pull = self._create_acr(name, args)
            wait_for.append(acr_pull)  # pods pull from the ACR as soon as they exist
        self.kubeconfig = self._user_kubeconfig()
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=ResourceOptions(parent=self, depends_on=wait_for, additional_secret_outputs=["kubeconfig"]),
        )
        self.register_outputs({"kubeconfig": self.kubeconfig, "clusterName": self.cluster.name,
                               "acrLoginServer": self.acr_login_server})

    def _create_cluster(self, name: str, args: AksClusterArgs) -> azure_native.containerservice.ManagedCluster:
        cs = azure_native.containerservice
        zones = aks_baseline.split_list(args.availability_zones) or None
        system_pool = cs.ManagedClusterAgentPoolProfileArgs(
            name="system",
            mode=cs.AgentPoolMode.SYSTEM,
            count=args.system_node_count,
            vm_size=args.system_node_vm_size,
            os_type=cs.OSType.LINUX,
            os_sku=cs.OSSKU.AZURE_LINUX,
            type=cs.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
            orchestrator_version=args.kubernetes_version,
            vnet_subnet_id=self.network.node_subnet_id,
            node_taints=["CriticalAddonsOnly=true:NoSchedule"],
            enable_auto_scaling=False,
            availability_zones=zones,
        )
        user_pool = cs.ManagedClusterAgentPoolProfileArgs(
            name="user",
            mode=cs.AgentPoolMode.USER,
            count=args.user_node_min_count if args.user_node_min_count > 0 else 1,
            min_count=args.user_node_min_count,
            max_count=args.user_node_max_count,
            enable_auto_scaling=True,
            vm_size=args.user_node_vm_size,
            os_type=cs.OSType.LINUX,
            os_sku=cs.OSSKU.AZURE_LINUX,
            type=cs.AgentPoolType.VIRTUAL_MACHINE_SCALE_SETS,
            orchestrator_version=args.kubernetes_version,
            vnet_subnet_id=self.network.node_subnet_id,
            availability_zones=zones,
        )
        security = cs.ManagedClusterSecurityProfileArgs(
            workload_identity=cs.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True),
            # Unused images off the nodes weekly (fewer stale, vulnerable layers on disk).
            image_cleaner=cs.ManagedClusterSecurityProfileImageCleanerArgs(enabled=True, interval_hours=168),
            defender=cs.ManagedClusterSecurityProfileDefenderArgs(
                log_analytics_workspace_resource_id=self.log_workspace_id,
                security_monitoring=cs.ManagedClusterSecurityProfileDefenderSecurityMonitoringArgs(enabled=True),
            ) if args.defender_for_containers else None,
        )
        return cs.ManagedCluster(
            f"{name}-aks",
            resource_group_name=self.resource_group.name,
            location=args.location,
            dns_prefix=f"{name}-aks",
            kubernetes_version=args.kubernetes_version,
            tags=dict(versions.AZURE_TAGS),
            identity=cs.ManagedClusterIdentityArgs(type=cs.ResourceIdentityType.SYSTEM_ASSIGNED),
            agent_pool_profiles=[system_pool, user_pool],
            enable_rbac=True,
            # Entra ID authentication + Azure RBAC for Kubernetes authorization; no static
            # local admin account (its kubeconfig would be a long-lived cluster-admin credential).
            aad_profile=cs.ManagedClusterAADProfileArgs(managed=True, enable_azure_rbac=True),
            disable_local_accounts=True,
            api_server_access_profile=_api_server_access(args),
            sku=cs.ManagedClusterSKUArgs(name=cs.ManagedClusterSKUName.BASE, tier=args.cluster_tier),
            addon_profiles={
                # Container logs and inventory into the workspace; the agent signs in with Entra
                # (the workspace takes no shared-key ingestion).
                "omsagent": cs.ManagedClusterAddonProfileArgs(enabled=True, config={
                    "logAnalyticsWorkspaceResourceID": self.log_workspace_id, "useAADAuth": "true"}),
                # Azure Policy for Kubernetes (Gatekeeper): guards what is applied outside Pulumi.
                "azurepolicy": cs.ManagedClusterAddonProfileArgs(enabled=True),
            },
            network_profile=cs.ContainerServiceNetworkProfileArgs(
                network_plugin=cs.NetworkPlugin.AZURE,
                network_plugin_mode=cs.NetworkPluginMode.OVERLAY,
                network_dataplane=cs.NetworkDataplane.CILIUM,
                network_policy=cs.NetworkPolicy.CILIUM,
                # Explicit, so they cannot drift from what the VNet plan was checked against.
                service_cidr=AKS_SERVICE_CIDR,
                dns_service_ip=AKS_DNS_SERVICE_IP,
                pod_cidr=AKS_POD_CIDR,
            ),
            auto_upgrade_profile=cs.ManagedClusterAutoUpgradeProfileArgs(
                upgrade_channel=cs.UpgradeChannel.PATCH,
                node_os_upgrade_channel=cs.NodeOSUpgradeChannel.NODE_IMAGE,
            ),
            oidc_issuer_profile=cs.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=security,
            # The cluster autoscaler owns the user pool's node count. The deployer's role
            # first: AKS takes minutes to create, time for the assignment to propagate.
            opts=ResourceOptions(parent=self, depends_on=[self.deployer_admin],
                                 ignore_changes=["agentPoolProfiles[1].count"]),
        )

    def _maintenance_windows(self, name: str, args: AksClusterArgs) -> None:
        """Cluster upgrades (the patch channel) and node-OS image upgrades only in a weekly
        window each, one after the other: nothing restarts nodes in the working week."""
        cs = azure_native.containerservice
        hours = aks_baseline.MAINTENANCE_HOURS
        for config_name, start in (("aksManagedAutoUpgradeSchedule", args.maintenance_start_hour),
                                   ("aksManagedNodeOSUpgradeSchedule", (args.maintenance_start_hour + hours) % 24)):
            cs.MaintenanceConfiguration(
                f"{name}-{config_name}",
                config_name=config_name,
                resource_group_name=self.resource_group.name,
                resource_name_=self.cluster.name,
                maintenance_window=cs.MaintenanceWindowArgs(
                    schedule=cs.ScheduleArgs(weekly=cs.WeeklyScheduleArgs(day_of_week=args.maintenance_day,
                                                                          interval_weeks=1)),
                    duration_hours=hours,
                    start_time=f"{start:02d}:00",
                    utc_offset="+00:00",
                ),
                opts=ResourceOptions(parent=self),
            )

    def _defender_plan(self, name: str) -> None:
        """The subscription's Defender for Containers plan. Subscription-wide: it bills every
        cluster there, and ``pulumi destroy`` must not switch it off for the others."""
        sub = azure_native.authorization.get_client_config_output().subscription_id
        azure_native.security.Pricing(
            f"{name}-defender-containers",
            pricing_name="Containers",
            pricing_tier=azure_native.security.PricingTier.STANDARD,
            scope_id=Output.concat("subscriptions/", sub),
            opts=ResourceOptions(parent=self, retain_on_delete=True),
        )

    def _user_kubeconfig(self) -> Output[str]:
        """The *user* kubeconfig (Entra ID login via kubelogin), never the admin one; secret."""
        creds = azure_native.containerservice.list_managed_cluster_user_credentials_output(
            resource_group_name=self.resource_group.name,
            resource_name=self.cluster.name,
            format="exec",
        )
        return Output.secret(
            creds.kubeconfigs.apply(lambda kcs: use_azure_cli_login(base64.b64decode(kcs[0].value).decode()))
        )

    def _create_acr(self, name: str, args: AksClusterArgs) -> tuple[Output[str], azure_native.authorization.RoleAssignment]:
        private = args.acr_public_network_access == "Disabled"
        # Registry names are global and alphanumeric only (no autonaming with dashes).
        suffix = random.RandomString(
            f"{name}-acr-suffix", length=10, special=False, upper=False, opts=ResourceOptions(parent=self)
        )
        acr = azure_native.containerregistry.Registry(
            f"{name}-acr",
            registry_name=Output.concat("rkpacr", suffix.result),
            resource_group_name=self.resource_group.name,
            location=args.location,
            # A private registry needs Premium (private endpoints are a Premium feature).
            sku=azure_native.containerregistry.SkuArgs(name="Premium" if private else "Standard"),
            admin_user_enabled=False,
            public_network_access=args.acr_public_network_access,
            tags=dict(versions.AZURE_TAGS),
            opts=ResourceOptions(parent=self),
        )
        diagnostic_setting(f"{name}-acr", "acr", acr.id, self.log_workspace_id, self)
        if private:
            PrivateLink(f"{name}-acr-private", PrivateLinkArgs(
                resource_group_name=self.resource_group.name, location=args.location, target_resource_id=acr.id,
                group_id="registry", placement=self.network.private_link, tags=versions.AZURE_TAGS,
                log_workspace_id=self.log_workspace_id), ResourceOptions(parent=self))
        kubelet_object_id = self.cluster.identity_profile.apply(
            lambda p: p["kubeletidentity"].object_id
        )
        acr_pull = azure_native.authorization.RoleAssignment(
            f"{name}-acr-pull",
            principal_id=kubelet_object_id,
            principal_type="ServicePrincipal",
            role_definition_id=_role_definition(ACR_PULL_ROLE_ID),
            scope=acr.id,
            opts=ResourceOptions(parent=self),
        )
        return acr.login_server, acr_pull
