"""The aks render holds the AKS security baseline: a closed API server, an audit trail for
every Azure resource, the Azure Policy and monitoring add-ons, planned maintenance, image
cleaner, tier and zones, Defender and a private ACR behind their keys; and the config
refuses what would open the API server."""

from __future__ import annotations

import pytest

from components.aks_baseline import AKS_LOG_CATEGORIES, MAX_AUTHORIZED_RANGES
from components.config import PROJECT, ConfigError, load_config
from tools.variants import RENDER_PLACEHOLDERS

AKS = "azure-native:containerservice:ManagedCluster"
DIAG = "azure-native:monitor:DiagnosticSetting"
WORKSPACE = "azure-native:operationalinsights:Workspace"
MAINTENANCE = "azure-native:containerservice:MaintenanceConfiguration"


def _of(r, type_):
    return [res for res in r.resources if res.type == type_]


def _cluster(r):
    [cluster] = _of(r, AKS)
    return cluster.inputs


# -- API server ------------------------------------------------------------------------------
def test_the_api_server_answers_the_authorized_ranges_only_and_run_command_is_off(rendered):
    access = _cluster(rendered("aks", apiServerAuthorizedIpRanges="198.51.100.7/32, 203.0.113.0/24"))[
        "apiServerAccessProfile"]
    assert access == {"authorizedIPRanges": ["198.51.100.7/32", "203.0.113.0/24"], "disableRunCommand": True}


def test_a_private_cluster_has_no_public_fqdn_and_no_ranges(rendered):
    access = _cluster(rendered("aks", apiServerAccess="private"))["apiServerAccessProfile"]
    assert access == {"enablePrivateCluster": True, "enablePrivateClusterPublicFQDN": False,
                      "privateDNSZone": "system", "disableRunCommand": True}


def _aks_config(**values: str):
    return load_config({f"{PROJECT}:target": "aks", **{f"{PROJECT}:{k}": v for k, v in values.items()}})


@pytest.mark.parametrize("values, says", [
    ({}, "required on aks (the API server would be open to every address)"),
    ({"apiServerAuthorizedIpRanges": "0.0.0.0/0"}, "'0.0.0.0/0' opens the API server to every address"),
    ({"apiServerAuthorizedIpRanges": "198.51.100.7"}, ""),  # a bare address is a /32: accepted
    ({"apiServerAuthorizedIpRanges": "198.51.100.7/24"}, "'198.51.100.7/24' is not a CIDR"),
    ({"apiServerAuthorizedIpRanges": "my-laptop"}, "'my-laptop' is not a CIDR"),
    ({"apiServerAuthorizedIpRanges": "2001:db8::/32"}, "AKS authorized ranges are IPv4 CIDRs"),
    ({"apiServerAuthorizedIpRanges": "198.51.100.0/24,198.51.100.0/24"}, "is listed twice"),
    ({"apiServerAuthorizedIpRanges": ",".join(f"10.0.{i // 256}.{i % 256}/32" for i in range(MAX_AUTHORIZED_RANGES + 1))},
     f"AKS takes at most {MAX_AUTHORIZED_RANGES}"),
    ({"apiServerAccess": "private", "apiServerAuthorizedIpRanges": "198.51.100.7/32"},
     "cannot be combined with apiServerAccess private"),
    ({"apiServerAccess": "public", "apiServerAuthorizedIpRanges": "198.51.100.7/32"}, "apiServerAccess"),
    ({"apiServerAuthorizedIpRanges": "198.51.100.7/32", "availabilityZones": "1,4"}, "'4': zones are 1, 2, 3"),
])
def test_the_config_refuses_an_open_or_malformed_api_server_access(values, says):
    if not says:
        assert _aks_config(**values).api_server_authorized_ip_ranges == values["apiServerAuthorizedIpRanges"]
        return
    with pytest.raises(ConfigError) as err:
        _aks_config(**values)
    assert says in str(err.value) and len(str(err.value).splitlines()) == 1


def test_kind_stacks_need_no_api_server_ranges():
    assert load_config({f"{PROJECT}:target": "kind"}).api_server_authorized_ip_ranges == ""


# -- audit -----------------------------------------------------------------------------------
@pytest.mark.parametrize("azure_redis, sends", [
    ("managed", {"Microsoft.Cache/redisEnterprise/redis-cluster": ((), True),
                 "redis-db": (("ConnectionEvents",), False)}),
    ("classic", {"Microsoft.Cache/Redis/redis-cache": (("ConnectedClientList", "MSEntraAuthenticationAuditLog"), True)}),
])
def test_every_azure_resource_with_logs_sends_them_to_one_workspace(rendered, azure_redis, sends):
    r = rendered("aks", azureRedis=azure_redis, createAcr="true", acrPublicNetworkAccess="Disabled")
    [workspace] = _of(r, WORKSPACE)
    assert workspace.inputs["features"] == {"disableLocalAuth": True} and workspace.inputs["retentionInDays"] == 30
    ids = {res.id: res for res in r.resources if res.custom}
    settings = {}
    for diag in _of(r, DIAG):
        assert diag.inputs["workspaceId"] == workspace.id
        assert diag.inputs["logAnalyticsDestinationType"] == "Dedicated"
        target = ids[diag.inputs["resourceUri"]]
        settings[target.type.rsplit(":", 1)[-1]] = (
            tuple(log["category"] for log in diag.inputs["logs"] if log["enabled"]),
            [m["category"] for m in diag.inputs["metrics"]] == ["AllMetrics"])
    expected = {"ManagedCluster": (AKS_LOG_CATEGORIES, True),
                "Registry": (("ContainerRegistryLoginEvents", "ContainerRegistryRepositoryEvents"), True),
                "PrivateEndpoint": ((), True)}
    expected.update({"RedisEnterprise": sends[next(iter(sends))], "Database": sends["redis-db"]}
                    if azure_redis == "managed" else {"Redis": next(iter(sends.values()))})
    assert settings == expected
    # one private endpoint for Redis, one for the registry: both send their metrics
    assert len([d for d in _of(r, DIAG) if "privateEndpoints" in d.inputs["resourceUri"]]) == 2
    assert {"kube-audit-admin", "guard"} <= set(AKS_LOG_CATEGORIES)


def test_the_monitoring_agent_signs_in_with_entra_and_azure_policy_guards_the_cluster(rendered):
    r = rendered("aks")
    [workspace] = _of(r, WORKSPACE)
    addons = _cluster(r)["addonProfiles"]
    assert addons["omsagent"] == {"enabled": True, "config": {
        "logAnalyticsWorkspaceResourceID": workspace.id, "useAADAuth": "true"}}
    assert addons["azurepolicy"] == {"enabled": True}


# -- operations ------------------------------------------------------------------------------
@pytest.mark.parametrize("day, hour, windows", [
    ("Sunday", "2", {"aksManagedAutoUpgradeSchedule": "02:00", "aksManagedNodeOSUpgradeSchedule": "06:00"}),
    ("Wednesday", "22", {"aksManagedAutoUpgradeSchedule": "22:00", "aksManagedNodeOSUpgradeSchedule": "02:00"}),
])
def test_upgrades_run_only_in_the_weekly_maintenance_windows(rendered, day, hour, windows):
    r = rendered("aks", maintenanceDay=day, maintenanceStartHour=hour)
    found = {m.inputs["configName"]: m.inputs["maintenanceWindow"] for m in _of(r, MAINTENANCE)}
    assert {name: w["startTime"] for name, w in found.items()} == windows
    for window in found.values():
        assert window["schedule"] == {"weekly": {"dayOfWeek": day, "intervalWeeks": 1}}
        assert window["durationHours"] == 4 and window["utcOffset"] == "+00:00"
    assert _cluster(r)["autoUpgradeProfile"] == {"upgradeChannel": "patch", "nodeOSUpgradeChannel": "NodeImage"}


def test_tier_zones_and_image_cleaner(rendered):
    cluster = _cluster(rendered("aks"))
    assert cluster["sku"] == {"name": "Base", "tier": "Standard"}
    assert [p["availabilityZones"] for p in cluster["agentPoolProfiles"]] == [["1", "2", "3"]] * 2
    assert cluster["securityProfile"]["imageCleaner"] == {"enabled": True, "intervalHours": 168}
    trial = _cluster(rendered("aks", clusterTier="Free", availabilityZones=""))
    assert trial["sku"]["tier"] == "Free"
    assert all("availabilityZones" not in p for p in trial["agentPoolProfiles"])


def test_defender_only_behind_its_key(rendered):
    off = rendered("aks")
    assert "defender" not in _cluster(off)["securityProfile"]
    assert not _of(off, "azure-native:security:Pricing")
    on = rendered("aks", defenderForContainers="true")
    [workspace] = _of(on, WORKSPACE)
    assert _cluster(on)["securityProfile"]["defender"] == {
        "logAnalyticsWorkspaceResourceId": workspace.id, "securityMonitoring": {"enabled": True}}
    [plan] = _of(on, "azure-native:security:Pricing")
    assert plan.inputs["pricingName"] == "Containers" and plan.inputs["pricingTier"] == "Standard"
    assert plan.inputs["scopeId"].startswith("subscriptions/")
    assert plan.retain_on_delete  # destroying this stack must not switch the plan off for the subscription


def test_a_private_registry_is_premium_behind_a_private_endpoint(rendered):
    public = rendered("aks", createAcr="true")
    [registry] = _of(public, "azure-native:containerregistry:Registry")
    assert registry.inputs["sku"] == {"name": "Standard"} and registry.inputs["publicNetworkAccess"] == "Enabled"
    assert registry.inputs["adminUserEnabled"] is False
    private = rendered("aks", createAcr="true", acrPublicNetworkAccess="Disabled")
    [registry] = _of(private, "azure-native:containerregistry:Registry")
    assert registry.inputs["sku"] == {"name": "Premium"} and registry.inputs["publicNetworkAccess"] == "Disabled"
    [endpoint] = [e for e in _of(private, "azure-native:network:PrivateEndpoint")
                  if e.inputs["privateLinkServiceConnections"][0]["groupIds"] == ["registry"]]
    assert endpoint.inputs["privateLinkServiceConnections"][0]["privateLinkServiceId"] == registry.id
    zones = {z.inputs["privateZoneName"] for z in _of(private, "azure-native:privatedns:PrivateZone")}
    assert "privatelink.azurecr.io" in zones


def test_renders_use_a_documentation_range_for_the_deployers_key():
    assert RENDER_PLACEHOLDERS == {"apiServerAuthorizedIpRanges": "203.0.113.0/24"}


def test_the_private_link_component_keeps_the_urns_of_existing_stacks(rendered):
    [link] = [res for res in rendered("aks").resources if res.type == "redis-keda-platform:index:PrivateLink"]
    assert any(a.get("type") == "redis-keda-platform:index:RedisPrivateLink" for a in link.aliases), link.aliases
