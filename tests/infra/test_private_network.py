"""Azure Redis off the internet (aks): a VNet with a node subnet and an endpoint subnet, a
private endpoint for the Redis (the service's group id), its private DNS zone linked to the
VNet, a DNS zone group on the endpoint, public access off by default, and the NetworkPolicy
egress to Redis narrowed to the endpoint subnet, from the same config value. Bad address
plans fail before any resource, naming the key."""

from __future__ import annotations

import pytest

from components.address_plan import AKS_DNS_SERVICE_IP, AKS_POD_CIDR, AKS_SERVICE_CIDR
from components.config import PROJECT, ConfigError, load_config
from tests.infra.test_config_validation import _run_main
from tests.infra.validation.netpol import Cluster, Endpoint

SERVICES = {
    "managed": ("azure-native:redisenterprise:RedisEnterprise", "redisEnterprise", "privatelink.redis.azure.net", ".redis.azure.net"),
    "classic": ("azure-native:redis:Redis", "redisCache", "privatelink.redis.cache.windows.net", ".redis.cache.windows.net"),
}
SUB = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/hub"


def _one(r, type_):
    found = r.by_type(type_)
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0]


@pytest.mark.parametrize("azure_redis", sorted(SERVICES))
def test_private_endpoint_zone_link_and_zone_group_are_wired(rendered, azure_redis):
    redis_type, group_id, zone_name, public_suffix = SERVICES[azure_redis]
    r = rendered("aks", azureRedis=azure_redis)
    vnet = _one(r, "azure-native:network:VirtualNetwork")
    subnets = {s.name: s for s in r.by_type("azure-native:network:Subnet")}
    assert set(subnets) == {"aks-network-nodes", "aks-network-endpoints"}
    nodes, endpoints = subnets["aks-network-nodes"], subnets["aks-network-endpoints"]
    assert vnet.inputs["addressSpace"]["addressPrefixes"] == ["10.42.0.0/16"]
    assert (nodes.inputs["addressPrefix"], endpoints.inputs["addressPrefix"]) == ("10.42.0.0/20", "10.42.16.0/24")
    assert nodes.inputs["virtualNetworkName"] == endpoints.inputs["virtualNetworkName"] == vnet.outputs["name"]

    redis = _one(r, redis_type)
    pe = _one(r, "azure-native:network:PrivateEndpoint")
    zone = _one(r, "azure-native:privatedns:PrivateZone")
    link = _one(r, "azure-native:privatedns:VirtualNetworkLink")
    group = _one(r, "azure-native:network:PrivateDnsZoneGroup")

    # endpoint: in the endpoint subnet, to this Redis, on the service's group id
    assert pe.inputs["subnet"]["id"].endswith(f"/virtualNetworks/{vnet.outputs['name']}/subnets/{endpoints.outputs['name']}")
    assert endpoints.urn in pe.property_dependencies["subnet"]
    (conn,) = pe.inputs["privateLinkServiceConnections"]
    assert conn["groupIds"] == [group_id]
    assert redis.urn in pe.property_dependencies["privateLinkServiceConnections"]
    assert conn["privateLinkServiceId"].endswith("/" + redis.outputs["name"])
    # the zone of the service's private-link domain, linked to the cluster's VNet
    assert zone.inputs["privateZoneName"] == zone_name and zone.inputs["location"] == "global"
    assert link.inputs["privateZoneName"] == zone_name and link.inputs["registrationEnabled"] is False
    assert vnet.urn in link.property_dependencies["virtualNetwork"]
    assert link.inputs["virtualNetwork"]["id"].endswith(f"/virtualNetworks/{vnet.outputs['name']}")
    # the zone group keeps the A record in step with the endpoint
    assert group.inputs["privateEndpointName"] == pe.outputs["name"]
    (config,) = group.inputs["privateDnsZoneConfigs"]
    assert config["privateDnsZoneId"].endswith(f"/privateDnsZones/{zone_name}")
    assert zone.urn in group.property_dependencies["privateDnsZoneConfigs"] and pe.urn in group.property_dependencies["privateEndpointName"]
    # the other service's zone is not created
    other = [z for k, z in SERVICES.items() if k != azure_redis][0]
    assert not r.by_type(other[0]) and all(x.inputs.get("privateZoneName") != other[2] for x in r.resources)
    # clients keep the service's normal host name (TLS host-name verification stays on)
    assert r.outputs["redisHost"].endswith(public_suffix) and "privatelink" not in r.outputs["redisHost"]


@pytest.mark.parametrize("azure_redis", sorted(SERVICES))
def test_public_access_is_disabled_by_default(rendered, azure_redis):
    redis_type = SERVICES[azure_redis][0]
    assert load_config({}).redis_public_network_access == "Disabled"
    r = rendered("aks", azureRedis=azure_redis)
    assert _one(r, redis_type).inputs["publicNetworkAccess"] == "Disabled"
    escape = rendered("aks", azureRedis=azure_redis, redisPublicNetworkAccess="Enabled")
    assert _one(escape, redis_type).inputs["publicNetworkAccess"] == "Enabled"
    # the private path stays in place either way
    assert _one(escape, "azure-native:network:PrivateEndpoint")


def test_aks_nodes_join_the_node_subnet_with_explicit_ranges(rendered):
    r = rendered("aks")
    aks = _one(r, "azure-native:containerservice:ManagedCluster")
    nodes = [s for s in r.by_type("azure-native:network:Subnet") if s.name == "aks-network-nodes"][0]
    pools = aks.inputs["agentPoolProfiles"]
    assert {p["name"] for p in pools} == {"system", "user"}
    assert all(p["vnetSubnetID"].endswith("/subnets/aks-network-nodes") for p in pools)
    assert nodes.urn in aks.depends_on
    prof = aks.inputs["networkProfile"]
    assert (prof["networkPlugin"], prof["networkPluginMode"]) == ("azure", "overlay")
    assert (prof["serviceCidr"], prof["dnsServiceIP"], prof["podCidr"]) == (AKS_SERVICE_CIDR, AKS_DNS_SERVICE_IP, AKS_POD_CIDR)
    (role,) = [x for x in r.resources if x.name == "aks-subnet-network-contributor"]
    assert role.inputs["roleDefinitionId"].endswith("/4d97b98b-1d4f-4787-a291-c67834d212e7")
    assert role.inputs["scope"] == pools[0]["vnetSubnetID"]
    assert role.inputs["principalType"] == "ServicePrincipal"
    assert role.inputs["principalId"] == "66666666-6666-6666-6666-666666666666"  # the cluster's identity (mock)


@pytest.mark.parametrize("azure_redis", sorted(SERVICES))
@pytest.mark.parametrize("cidrs", [{}, {"vnetAddressSpace": "172.20.0.0/16", "nodeSubnetCidr": "172.20.0.0/22",
                                        "endpointSubnetCidr": "172.20.8.0/27"}], ids=["default", "custom"])
def test_redis_egress_is_the_endpoint_subnet(rendered, azure_redis, cidrs):
    r = rendered("aks", azureRedis=azure_redis, **cidrs)
    endpoints = [s for s in r.by_type("azure-native:network:Subnet") if s.name == "aks-network-endpoints"][0]
    (egress,) = [p for p in r.k8s("NetworkPolicy") if p["metadata"]["name"] == "redis-egress"]
    (rule,) = egress["spec"]["egress"]
    assert rule["to"] == [{"ipBlock": {"cidr": endpoints.inputs["addressPrefix"]}}]
    assert endpoints.inputs["addressPrefix"] == r.config.endpoint_subnet_cidr
    assert rule["ports"] == [{"protocol": "TCP", "port": r.outputs["redisPort"]}]
    # The app namespace opens any address only for the keyless apps' Entra tokens (HTTPS; Azure
    # Managed Redis), and never to the metadata endpoint
    wide_apps = [p for p in r.k8s("NetworkPolicy") if p["metadata"]["namespace"] == "platform"
                 and "0.0.0.0/0" in str(p["spec"])]
    assert [p["metadata"]["name"] for p in wide_apps] == (["entra-token-egress"] if azure_redis == "managed" else [])
    for p in wide_apps:
        assert p["spec"]["egress"] == [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
            "169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}}], "ports": [{"protocol": "TCP", "port": 443}]}]
    # KEDA's and monitoring's namespaces open any address only on the API server's and the
    # kubelet's ports (docs/network.md#the-api-server-compromise), never on the Redis port
    wide = {port["port"] for p in r.k8s("NetworkPolicy") for rule in p["spec"].get("egress") or []
            if "0.0.0.0/0" in str(rule["to"]) for port in rule["ports"]}
    assert wide == {443, 6443, 10250}
    # evaluated: a worker and KEDA's operator reach an address in the endpoint subnet, not a
    # public one, not another port
    cluster = Cluster(r.k8s("NetworkPolicy"))
    worker = Endpoint("worker", "platform", {"app.kubernetes.io/name": "worker"})
    keda = Endpoint("keda-operator", "keda", {"app": "keda-operator", "app.kubernetes.io/name": "keda-operator"})
    subnet_ip = str(next(__import__("ipaddress").ip_network(r.config.endpoint_subnet_cidr).hosts()) + 3)
    for pod in (worker, keda):
        assert cluster.egress_allowed(pod, Endpoint("private endpoint", external=True, ip=subnet_ip), r.outputs["redisPort"])
        assert not cluster.egress_allowed(pod, Endpoint("public Redis", external=True, ip="20.50.60.70"), r.outputs["redisPort"])
    assert not cluster.egress_allowed(worker, Endpoint("private endpoint", external=True, ip=subnet_ip), 443)


def test_keda_reaches_redis_by_the_pods_host_name(rendered):
    """KEDA's operator runs in the cluster and resolves the same name through the cluster DNS
    (private zone linked to the VNet): its trigger address is the pods' host and port."""
    r = rendered("aks", workerMode="deployment")
    (so,) = r.k8s("ScaledObject")
    pods = {e["name"]: e.get("value") for e in r.k8s("Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    for trigger in so["spec"]["triggers"]:
        assert trigger["metadata"]["address"] == f"{pods['REDIS_HOST']}:{pods['REDIS_PORT']}" == f"{r.outputs['redisHost']}:{r.outputs['redisPort']}"


def test_bring_your_own_subnets(rendered):
    r = rendered("aks", nodeSubnetId=f"{SUB}/subnets/aks-nodes", endpointSubnetId=f"{SUB}/subnets/private-endpoints",
                 endpointSubnetCidr="192.168.8.0/26")
    assert not r.by_type("azure-native:network:VirtualNetwork") and not r.by_type("azure-native:network:Subnet")
    pe = _one(r, "azure-native:network:PrivateEndpoint")
    assert pe.inputs["subnet"]["id"] == f"{SUB}/subnets/private-endpoints"
    assert _one(r, "azure-native:privatedns:VirtualNetworkLink").inputs["virtualNetwork"]["id"] == SUB
    aks = _one(r, "azure-native:containerservice:ManagedCluster")
    assert {p["vnetSubnetID"] for p in aks.inputs["agentPoolProfiles"]} == {f"{SUB}/subnets/aks-nodes"}
    (egress,) = [p for p in r.k8s("NetworkPolicy") if p["metadata"]["name"] == "redis-egress"]
    assert egress["spec"]["egress"][0]["to"] == [{"ipBlock": {"cidr": "192.168.8.0/26"}}]


BAD_PLANS = [
    ({"vnetAddressSpace": "10.42.0.0/33"}, "vnetAddressSpace", "is not a CIDR"),
    ({"endpointSubnetCidr": "banana"}, "endpointSubnetCidr", "is not a CIDR"),
    ({"nodeSubnetCidr": "10.42.0.1/20"}, "nodeSubnetCidr", "is not a CIDR"),  # host bits set
    ({"endpointSubnetCidr": "10.43.0.0/24"}, "endpointSubnetCidr", "outside vnetAddressSpace"),
    ({"endpointSubnetCidr": "10.42.8.0/24"}, "endpointSubnetCidr", "overlaps nodeSubnetCidr"),
    ({"vnetAddressSpace": "10.0.0.0/8", "nodeSubnetCidr": "10.42.0.0/20"}, "vnetAddressSpace", "overlaps the AKS service CIDR"),
    ({"vnetAddressSpace": "10.244.0.0/16", "nodeSubnetCidr": "10.244.0.0/20", "endpointSubnetCidr": "10.244.16.0/24"},
     "nodeSubnetCidr", "overlaps the AKS pod CIDR"),
    ({"vnetAddressSpace": "fd00::/48"}, "vnetAddressSpace", "not an IPv4 CIDR"),
    ({"nodeSubnetId": f"{SUB}/subnets/a", "endpointSubnetCidr": "192.168.8.0/26"}, "endpointSubnetId", "needs both subnet IDs"),
    ({"nodeSubnetId": "subnet-a", "endpointSubnetId": f"{SUB}/subnets/b", "endpointSubnetCidr": "192.168.8.0/26"},
     "nodeSubnetId", "not a subnet resource ID"),
    ({"nodeSubnetId": f"{SUB}/subnets/a", "endpointSubnetId": f"{SUB}2/subnets/b", "endpointSubnetCidr": "192.168.8.0/26"},
     "endpointSubnetId", "in the node subnet's VNet"),
    ({"nodeSubnetId": f"{SUB}/subnets/a", "endpointSubnetId": f"{SUB}/subnets/b"}, "endpointSubnetCidr", "CIDR of endpointSubnetId"),
    ({"nodeSubnetId": f"{SUB}/subnets/a", "endpointSubnetId": f"{SUB}/subnets/b", "endpointSubnetCidr": "10.0.4.0/24"},
     "endpointSubnetCidr", "overlaps the AKS service CIDR"),
]


@pytest.mark.parametrize("overrides, key, fragment", BAD_PLANS, ids=[f"{k}-{i}" for i, (_, k, _f) in enumerate(BAD_PLANS)])
def test_bad_address_plan_fails_naming_the_key(overrides, key, fragment):
    with pytest.raises(ConfigError) as err:
        load_config({f"{PROJECT}:target": "aks", **{f"{PROJECT}:{k}": v for k, v in overrides.items()}})
    msg = str(err.value)
    assert f"{PROJECT}:{key}:" in msg and fragment in msg, msg


@pytest.mark.parametrize("overrides, key, _fragment", BAD_PLANS[:6:2])
def test_bad_address_plan_registers_no_resource(overrides, key, _fragment):
    monitor, error = _run_main({"target": "aks", **overrides})
    assert error is not None and f"{PROJECT}:{key}" in str(error)
    assert monitor.recorded == []


def test_component_args_refuse_bad_plans_too():
    """The Args check the same rules (a component used without the config model)."""
    from components.azure_network import AzureNetworkArgs, PrivateLinkPlacement
    from components.private_link import PrivateLinkArgs

    AzureNetworkArgs(resource_group_name="rg", location="westeurope")
    with pytest.raises(ValueError, match="endpoint_subnet_cidr: 10.42.0.0/24 overlaps node_subnet_cidr"):
        AzureNetworkArgs(resource_group_name="rg", location="westeurope", endpoint_subnet_cidr="10.42.0.0/24")
    with pytest.raises(ValueError, match="needs both subnet IDs"):
        AzureNetworkArgs(resource_group_name="rg", location="westeurope", node_subnet_id=f"{SUB}/subnets/a")
    placement = PrivateLinkPlacement(subnet_id="s", vnet_id="v", subnet_cidr="10.42.16.0/24")
    with pytest.raises(ValueError, match="group_id: 'redis' is not one of redisCache, redisEnterprise, registry"):
        PrivateLinkArgs(resource_group_name="rg", location="l", target_resource_id="r", group_id="redis",
                        placement=placement)
    assert PrivateLinkArgs(resource_group_name="rg", location="l", target_resource_id="r", group_id="registry",
                           placement=placement).dns_zone == "privatelink.azurecr.io"
