"""The recording Pulumi mocks ``tools/render.py`` evaluates a stack under: a mock provider
that answers every resource and invoke with plausible outputs, and a monitor that records
what the program registers (inputs as the provider would get them, secrets unwrapped in
memory only, dependencies, parent, provider, aliases).

The ``MOCK_*`` values are what the mocks hand out for secrets; tools/redaction.py replaces
them wherever they appear, and the tests assert none leaks into a render.
"""

from __future__ import annotations

import base64
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from components.config import PlatformConfig

# Values the mocks hand out for secrets. Tests assert they never leak.
MOCK_PASSWORD = "mock-random-password-Zx81Qw"
MOCK_REDIS_PRIMARY_KEY = "mock-azure-redis-primary-key-Kq7Tn2"
MOCK_REDIS_SECONDARY_KEY = "mock-azure-redis-secondary-key-Lp3Vb9"
MOCK_MANAGED_REDIS_PRIMARY_KEY = "mock-azure-managed-redis-primary-key-Wd4Mc8"
MOCK_MANAGED_REDIS_SECONDARY_KEY = "mock-azure-managed-redis-secondary-key-Ys6Jf1"
MOCK_KUBE_CA = "mock-kube-ca-data-Hh5Rr0"
# What `az aks get-credentials --format exec` returns for an Entra ID cluster.
MOCK_KUBECONFIG = f"""apiVersion: v1
kind: Config
clusters:
- name: aks-aks
  cluster:
    certificate-authority-data: {MOCK_KUBE_CA}
    server: https://aks-aks.hcp.westeurope.azmk8s.io:443
contexts:
- name: aks-aks
  context: {{cluster: aks-aks, user: clusterUser_aks-rg_aks-aks}}
current-context: aks-aks
users:
- name: clusterUser_aks-rg_aks-aks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: kubelogin
      args: [get-token, --environment, AzurePublicCloud, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630,
             --client-id, 80faf920-1908-4b52-b5ef-a8e7bedfc67a, --tenant-id, 55555555-5555-5555-5555-555555555555,
             --login, devicecode]
      interactiveMode: IfAvailable
"""
MOCK_SECRET_VALUES = (
    MOCK_PASSWORD, MOCK_REDIS_PRIMARY_KEY, MOCK_REDIS_SECONDARY_KEY,
    MOCK_MANAGED_REDIS_PRIMARY_KEY, MOCK_MANAGED_REDIS_SECONDARY_KEY, MOCK_KUBECONFIG, MOCK_KUBE_CA,
)
MOCK_TENANT = "55555555-5555-5555-5555-555555555555"
MOCK_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"

# Azure child resources named by their own key (not by the parent's name they also carry).
_NAMED_BY = {
    "azure-native:redisenterprise:Database": "databaseName",
    "azure-native:network:Subnet": "subnetName",
    "azure-native:privatedns:VirtualNetworkLink": "virtualNetworkLinkName",
    "azure-native:network:PrivateDnsZoneGroup": "privateDnsZoneGroupName",
}

# ARM resource types, for realistic resource IDs.
_ARM_TYPES = {
    "azure-native:redisenterprise:RedisEnterprise": "Microsoft.Cache/redisEnterprise",
    "azure-native:redis:Redis": "Microsoft.Cache/redis",
    "azure-native:containerservice:ManagedCluster": "Microsoft.ContainerService/managedClusters",
    "azure-native:containerregistry:Registry": "Microsoft.ContainerRegistry/registries",
}

_SECRET_SIG = rpc._special_sig_key
_SECRET_VAL = rpc._special_secret_sig

@dataclass
class RecordedResource:
    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    """Inputs as the provider would receive them, secrets unwrapped (in memory only)."""
    secret_paths: list[tuple[Any, ...]]
    """Paths inside ``inputs`` whose value was a secret Output."""
    outputs: dict[str, Any]
    depends_on: list[str]
    """All dependency URNs (explicit ``depends_on`` + those implied by inputs)."""
    property_dependencies: dict[str, list[str]]
    parent: str
    provider: str
    custom: bool
    order: int
    id: str = ""
    """The resource's ID (for an Azure resource, the ARM-shaped mock ID its dependants see)."""
    retain_on_delete: bool = False
    aliases: list[dict[str, Any]] = field(default_factory=list)
    """Alias specs as registered: {name, type, stack, project, parentUrn | noParent} (or {urn})."""

    @property
    def explicit_depends_on(self) -> list[str]:
        implied = {u for urns in self.property_dependencies.values() for u in urns}
        return [u for u in self.depends_on if u not in implied]


@dataclass
class RenderResult:
    stack: str
    config: PlatformConfig
    k8s_objects: list[dict[str, Any]]
    """Every Kubernetes object (Secret values redacted), in apply order."""
    azure_resources: list[dict[str, Any]]
    other_resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    """Stack outputs, real (mock) values."""
    secret_outputs: set[str]
    """Names of outputs marked secret."""
    resources: list[RecordedResource]
    """Everything registered, raw (unredacted)."""
    k8s_resources: list[RecordedResource] = field(default_factory=list)
    """The RecordedResource behind each entry of k8s_objects (same order)."""

    def by_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def k8s(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.k8s_objects if o.get("kind") == kind]


# ---------------------------------------------------------------------------------------
def _unwrap(value: Any, path: tuple[Any, ...], secret_paths: list[tuple[Any, ...]]) -> Any:
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == _SECRET_VAL:
            secret_paths.append(path)
            return _unwrap(value.get("value"), path, [])
        return {k: _unwrap(v, path + (k,), secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, path + (i,), secret_paths) for i, v in enumerate(value)]
    return value


def normalize(value: Any) -> Any:
    """The wire format turns every number into a float: 5.0 -> 5."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


class RecordingMocks(pulumi.runtime.Mocks):
    """Mock provider: plausible camelCase outputs for each resource type and invoke."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        typ, name = args.typ, args.name
        state: dict[str, Any] = dict(inputs)
        rid = f"{name}-id"
        if typ.startswith("kubernetes:") and not typ.startswith("kubernetes:helm"):
            meta = dict(_plain(inputs.get("metadata")) or {})
            meta.setdefault("name", name)
            state["metadata"] = meta
            rid = f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/")
        elif typ == "kubernetes:helm.sh/v3:Release":
            state["status"] = {
                "name": inputs.get("name", name), "namespace": inputs.get("namespace"),
                "chart": inputs.get("chart"), "version": inputs.get("version"), "status": "deployed",
            }
        elif typ == "random:index/randomString:RandomString":
            state["result"] = "abc123def4"[: int(inputs.get("length", 10))]
        elif typ == "random:index/randomPassword:RandomPassword":
            state["result"] = MOCK_PASSWORD
            state["bcryptHash"] = "mock-bcrypt"
        elif typ.startswith("azure-native:"):
            az_name = (inputs.get("resourceName") or inputs.get("registryName") or inputs.get("clusterName")
                       or inputs.get("virtualNetworkName") or inputs.get("privateZoneName")
                       or inputs.get("privateEndpointName")
                       if typ not in _NAMED_BY else inputs.get(_NAMED_BY[typ])) \
                or inputs.get("name") or name
            state["name"] = az_name
            rid = f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/mock-rg/providers/{typ.split(':')[1]}/{az_name}"
            group = inputs.get("resourceGroupName", "mock-rg")
            if typ in _ARM_TYPES:
                rid = f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{group}/providers/{_ARM_TYPES[typ]}/{az_name}"
            if typ == "azure-native:network:VirtualNetwork":
                rid = f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/virtualNetworks/{az_name}"
            elif typ == "azure-native:network:Subnet":
                rid = (f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/"
                       f"virtualNetworks/{inputs.get('virtualNetworkName')}/subnets/{az_name}")
            elif typ == "azure-native:network:PrivateEndpoint":
                # The private IP is Azure's choice: not known offline, so not faked here.
                rid = f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/privateEndpoints/{az_name}"
            elif typ == "azure-native:privatedns:PrivateZone":
                rid = f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{group}/providers/Microsoft.Network/privateDnsZones/{az_name}"
            if typ == "azure-native:resources:ResourceGroup":
                state["name"] = inputs.get("resourceGroupName") or f"{name}-mock"
                rid = f"/subscriptions/{MOCK_SUBSCRIPTION}/resourceGroups/{state['name']}"
            elif typ == "azure-native:redis:Redis":
                state.update(hostName=f"{az_name}.redis.cache.windows.net", sslPort=6380, port=6379,
                             provisioningState="Succeeded")
            elif typ == "azure-native:redisenterprise:RedisEnterprise":
                # Azure Managed Redis: <name>.<region>.redis.azure.net, TLS on the database port.
                state.update(hostName=f"{az_name}.{inputs.get('location', 'westeurope')}.redis.azure.net",
                             provisioningState="Succeeded", redisVersion="7.4")
            elif typ == "azure-native:redisenterprise:Database":
                state.update(provisioningState="Succeeded", resourceState="Running")
            elif typ == "azure-native:containerservice:ManagedCluster":
                state.update(
                    identity={"type": "SystemAssigned", "principalId": "66666666-6666-6666-6666-666666666666",
                              "tenantId": "55555555-5555-5555-5555-555555555555"},
                    fqdn=f"{az_name}.hcp.westeurope.azmk8s.io",
                    oidcIssuerProfile={"enabled": True, "issuerURL":
                                       f"https://westeurope.oic.prod-aks.azure.com/{MOCK_TENANT}/{_mock_uuid(az_name)}/"},
                    nodeResourceGroup=f"MC_{az_name}",
                    identityProfile={"kubeletidentity": {
                        "clientId": "11111111-1111-1111-1111-111111111111",
                        "objectId": "22222222-2222-2222-2222-222222222222",
                        "resourceId": "/subscriptions/mock/kubelet",
                    }},
                )
            elif typ == "azure-native:containerregistry:Registry":
                state["loginServer"] = f"{az_name}.azurecr.io"
            elif typ == "azure-native:managedidentity:UserAssignedIdentity":
                # Azure's choice, made up here: distinct per identity, stable between renders.
                state.update(clientId=_mock_uuid(f"client:{name}"), principalId=_mock_uuid(f"principal:{name}"),
                             tenantId=MOCK_TENANT)
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:  # type: ignore[override]  # the SDK takes either form
        tok = args.token
        if tok == "azure-native:redis:listRedisKeys":
            return {"primaryKey": MOCK_REDIS_PRIMARY_KEY, "secondaryKey": MOCK_REDIS_SECONDARY_KEY}
        if tok == "azure-native:redisenterprise:listDatabaseKeys":
            return {"primaryKey": MOCK_MANAGED_REDIS_PRIMARY_KEY, "secondaryKey": MOCK_MANAGED_REDIS_SECONDARY_KEY}
        if tok == "azure-native:containerservice:listManagedClusterUserCredentials":
            value = base64.b64encode(MOCK_KUBECONFIG.encode()).decode()
            return {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
        if tok == "azure-native:authorization:getClientConfig":
            return {
                "clientId": "33333333-3333-3333-3333-333333333333",
                "objectId": "44444444-4444-4444-4444-444444444444",
                "subscriptionId": MOCK_SUBSCRIPTION,
                "tenantId": "55555555-5555-5555-5555-555555555555",
            }
        return {}


def _mock_uuid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"redis-keda-platform-mock:{seed}"))


def _plain(value: Any) -> Any:
    return _unwrap(value, (), [])


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also records inputs, dependencies, parent and provider
    (``depends_on`` is not in MockResourceArgs)."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self._lock = threading.Lock()

    def RegisterResource(self, request):  # noqa: N802 (gRPC name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        raw_inputs = rpc.deserialize_properties(request.object)
        secret_paths: list[tuple[Any, ...]] = []
        inputs = normalize(_unwrap(raw_inputs, (), secret_paths))
        reg = self.resources.get(response.urn)
        outputs = normalize(_plain(reg.state)) if reg else {}
        with self._lock:
            self.recorded.append(RecordedResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                inputs=inputs,
                secret_paths=secret_paths,
                outputs=outputs,
                depends_on=list(request.dependencies),
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                parent=request.parent,
                provider=request.provider,
                custom=bool(request.custom),
                order=len(self.recorded),
                id=response.id,
                retain_on_delete=bool(request.retainOnDelete),
                aliases=[_alias(a) for a in request.aliases] + [{"urn": u} for u in request.aliasURNs],
            ))
        return response


def _alias(alias: Any) -> dict[str, Any]:
    if alias.HasField("urn"):
        return {"urn": alias.urn}
    spec = alias.spec
    out: dict[str, Any] = {"name": spec.name, "type": spec.type, "stack": spec.stack, "project": spec.project}
    out.update({"noParent": True} if spec.noParent else {"parentUrn": spec.parentUrn})
    return out
