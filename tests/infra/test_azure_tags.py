"""Every Azure resource that takes tags carries the project's (the resource group, cluster,
VNet and ACR had none), on both Azure Redis services."""

from __future__ import annotations

import pytest

from components.versions import AZURE_TAGS

#: azure-native types whose ARM resource has no tags of its own (child resources, role assignments).
UNTAGGABLE = {
    "azure-native:authorization:RoleAssignment", "azure-native:network:Subnet",
    "azure-native:redisenterprise:Database", "azure-native:network:PrivateDnsZoneGroup",
    "azure-native:monitor:DiagnosticSetting", "azure-native:containerservice:MaintenanceConfiguration",
    "azure-native:security:Pricing", "azure-native:managedidentity:FederatedIdentityCredential",
    "azure-native:redisenterprise:AccessPolicyAssignment",
}


@pytest.mark.parametrize("overrides", [{"createAcr": "true"}, {"createAcr": "true", "azureRedis": "classic"}],
                         ids=["managed", "classic"])
def test_every_taggable_azure_resource_is_tagged(rendered, overrides):
    r = rendered("aks", **overrides)
    missing = [f"{res['type']} {res['name']}" for res in r.azure_resources
               if res["type"] not in UNTAGGABLE
               and not AZURE_TAGS.items() <= (res["properties"].get("tags") or {}).items()]
    assert not missing, "untagged: " + ", ".join(missing)
    assert {res["type"] for res in r.azure_resources} >= {
        "azure-native:resources:ResourceGroup", "azure-native:containerservice:ManagedCluster",
        "azure-native:network:VirtualNetwork", "azure-native:containerregistry:Registry"}
