"""Evaluate a stack offline under Pulumi mocks and write what it would create.

    python tools/render.py --stack local --out out/local [--set workerMode=job ...]
    python -m tools.render --stack aks --out out/aks

Writes:
  OUT/k8s/<NNN>-<kind>-<namespace>-<name>.yaml   one Kubernetes object per file, as the API
                                                 server would receive it (Secret values redacted)
  OUT/azure-resources.json                       [{type, name, properties}] (secrets redacted)
  OUT/other-resources.json                       Helm releases, random, providers, ...
  OUT/outputs.json                               stack outputs (secret ones redacted)
  OUT/helm/<release>/...                         each Helm release, rendered by `helm template` of
                                                 the vendored chart with the program's values
                                                 (tools/helm_render.py)

No Pulumi CLI, no network, no cloud credentials. Bad config: exit 2 with one line
naming the key. Python API: ``render_stack(stack, overrides) -> RenderResult``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python tools/render.py` from anywhere
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402
import yaml  # noqa: E402
from pulumi.runtime import mocks as pulumi_mocks  # noqa: E402
from pulumi.runtime import rpc, settings  # noqa: E402

from components.config import PROJECT, ConfigError, PlatformConfig, load_config  # noqa: E402

STACKS_DIR = ROOT / "stacks"
REDACTED = "REDACTED"
REDACTED_B64 = base64.b64encode(REDACTED.encode()).decode()

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

_SECRET_SIG = rpc._special_sig_key  # type: ignore[attr-defined]
_SECRET_VAL = rpc._special_secret_sig  # type: ignore[attr-defined]

# Order the API server should see them in (also the file numbering).
KIND_ORDER = [
    "Namespace", "ServiceAccount", "Secret", "ConfigMap", "Service", "PersistentVolumeClaim",
    "StatefulSet", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
    "TriggerAuthentication", "ScaledObject", "ScaledJob",
]


# ---------------------------------------------------------------------------------------
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

    def urn_of(self, type_: str) -> list[str]:
        return [r.urn for r in self.resources if r.type == type_]


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


def _normalize(value: Any) -> Any:
    """The wire format turns every number into a float: 5.0 -> 5."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
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
                    nodeResourceGroup=f"MC_{az_name}",
                    identityProfile={"kubeletidentity": {
                        "clientId": "11111111-1111-1111-1111-111111111111",
                        "objectId": "22222222-2222-2222-2222-222222222222",
                        "resourceId": "/subscriptions/mock/kubelet",
                    }},
                )
            elif typ == "azure-native:containerregistry:Registry":
                state["loginServer"] = f"{az_name}.azurecr.io"
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
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
        inputs = _normalize(_unwrap(raw_inputs, (), secret_paths))
        reg = self.resources.get(response.urn)
        outputs = _normalize(_plain(reg.state)) if reg else {}
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


# ---------------------------------------------------------------------------------------
def read_stack_config(stack: str) -> dict[str, Any]:
    path = STACKS_DIR / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS_DIR.glob("Pulumi.*.yaml"))
        raise ConfigError([("", f"unknown stack {stack!r}: no {path.relative_to(ROOT)} (known: {', '.join(known)})")])
    doc = yaml.safe_load(path.read_text()) or {}
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise ConfigError([("", f"{path.name}: 'config' must be a mapping")])
    for key, value in cfg.items():
        if isinstance(value, dict) and "secure" in value:
            raise ConfigError([(key.rpartition(":")[2], "secret (secure:) values cannot be rendered offline; this project needs none")])
    return cfg


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError([("", f"--set expects key=value, got {pair!r}")])
        out[key.strip()] = value
    return out


def _set_path(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def _redact_strings(value: Any) -> Any:
    if isinstance(value, str):
        for s in MOCK_SECRET_VALUES:
            if s in value:
                return REDACTED
        return value
    if isinstance(value, dict):
        return {k: _redact_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_strings(v) for v in value]
    return value


def redacted_inputs(res: RecordedResource) -> dict[str, Any]:
    """Inputs with every secret path and every known mock secret value replaced."""
    data = json.loads(json.dumps(res.inputs))
    for path in res.secret_paths:
        if path:
            try:
                _set_path(data, path, REDACTED)
            except (KeyError, IndexError, TypeError):
                pass
        else:
            data = {k: REDACTED for k in data}
    return _redact_strings(data)


def _k8s_object(res: RecordedResource) -> dict[str, Any]:
    obj = redacted_inputs(res)
    obj = {k: v for k, v in obj.items() if not k.startswith("__")}
    if obj.get("kind") == "Secret":
        keys = set((res.inputs.get("stringData") or {}).keys()) | set((res.inputs.get("data") or {}).keys())
        obj.pop("stringData", None)
        obj["data"] = {k: REDACTED_B64 for k in sorted(keys)}
    ordered = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    ordered.update({k: v for k, v in obj.items() if k not in ordered})
    return ordered


def _is_k8s_object(res: RecordedResource) -> bool:
    return (
        res.custom
        and res.type.startswith("kubernetes:")
        and not res.type.startswith("kubernetes:helm.sh")
        and "kind" in res.inputs
    )


def _kind_rank(obj: dict[str, Any]) -> tuple:
    kind = obj.get("kind", "")
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    meta = obj.get("metadata") or {}
    return (rank, meta.get("namespace") or "", meta.get("name") or "")


def render_stack(stack: str, overrides: Mapping[str, str] | None = None) -> RenderResult:
    """Evaluate ``stack`` (stacks/Pulumi.<stack>.yaml + overrides) under mocks.

    Raises ConfigError (before any resource is registered) on bad config. Safe to call
    repeatedly in one process: fresh event loop, fresh mocks, runtime settings reset.
    """
    raw = read_stack_config(stack)
    raw.update(dict(overrides or {}))
    config = load_config(raw)
    return evaluate(config, stack=stack, raw_config=raw)


def evaluate(config: PlatformConfig, *, stack: str = "test", raw_config: Mapping[str, Any] | None = None,
             construct: Callable[[], Any] | None = None) -> RenderResult:
    """Run the program under mocks. ``construct`` builds the platform and returns an object
    with ``outputs`` (name -> Output); by default the stack program's way: ``Platform`` with
    the config's keys. tests/infra/test_platform_parity.py passes the provider's way."""
    from components.platform import Platform  # no resources at import time
    from components.platform_args import args_from_config

    if construct is None:
        def construct() -> Any:
            return Platform("platform", args_from_config(config))

    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    # Our own loop for this evaluation; afterwards the caller's loop (if one was set) is
    # current again. Peek without creating one (get_event_loop() would create it).
    policy_local = getattr(asyncio.get_event_loop_policy(), "_local", None)
    previous_loop = getattr(policy_local, "_loop", None)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    try:
        settings.reset_options()
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
        flat = {(k if ":" in k else f"{PROJECT}:{k}"): (v if isinstance(v, str) else json.dumps(v)) for k, v in (raw_config or {}).items()}
        pulumi.runtime.set_all_config(flat, [])
        settings.SETTINGS.rpc_manager.clear()
        settings.SETTINGS.outputs.clear()

        async def _collect(platform) -> None:
            for key, out in platform.outputs.items():
                outputs[key] = _normalize(await out.future())
                if await out.is_secret():
                    secret_outputs.add(key)

        def program():
            return _collect(construct())

        loop.run_until_complete(pulumi.runtime.stack.run_pulumi_func(program))
    finally:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(previous_loop if previous_loop is not None and not previous_loop.is_closed() else None)
        settings.reset_options()

    recorded = sorted(monitor.recorded, key=lambda r: r.order)
    k8s_pairs = [(_k8s_object(r), r) for r in recorded if _is_k8s_object(r)]
    k8s_pairs.sort(key=lambda p: _kind_rank(p[0]))
    azure = [
        {"type": r.type, "name": r.name, "properties": redacted_inputs(r)}
        for r in recorded if r.type.startswith("azure-native:")
    ]
    other = [
        {"type": r.type, "name": r.name, "properties": redacted_inputs(r)}
        for r in recorded
        if r.custom and not r.type.startswith("azure-native:") and not _is_k8s_object(r)
    ]
    return RenderResult(
        stack=stack,
        config=config,
        k8s_objects=[o for o, _ in k8s_pairs],
        azure_resources=azure,
        other_resources=other,
        outputs=outputs,
        secret_outputs=secret_outputs,
        resources=recorded,
        k8s_resources=[r for _, r in k8s_pairs],
    )


# ---------------------------------------------------------------------------------------
def _file_name(index: int, obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace") or "cluster"
    return f"{index:03d}-{obj.get('kind', 'unknown').lower()}-{ns}-{meta.get('name', 'unnamed')}.yaml"


def write_result(result: RenderResult, out: Path) -> list[Path]:
    k8s_dir = out / "k8s"
    k8s_dir.mkdir(parents=True, exist_ok=True)
    for stale in k8s_dir.glob("*.yaml"):
        stale.unlink()
    written: list[Path] = []
    for i, obj in enumerate(result.k8s_objects, start=1):
        path = k8s_dir / _file_name(i, obj)
        path.write_text(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False))
        written.append(path)
    (out / "azure-resources.json").write_text(json.dumps(result.azure_resources, indent=2) + "\n")
    (out / "other-resources.json").write_text(json.dumps(result.other_resources, indent=2) + "\n")
    safe_outputs = {k: ("[secret]" if k in result.secret_outputs else v) for k, v in result.outputs.items()}
    (out / "outputs.json").write_text(json.dumps(_redact_strings(safe_outputs), indent=2) + "\n")
    return written


def _quiet_loop_finalizers() -> None:
    """Pulumi's runtime creates event loops in its executor threads and never closes them;
    at interpreter exit their ``__del__`` can print a harmless "Exception ignored ...
    Invalid file descriptor" traceback. Drop exactly that; report everything else."""
    default = sys.unraisablehook

    def hook(unraisable) -> None:
        obj = getattr(unraisable, "object", None)
        if getattr(obj, "__qualname__", "") == "BaseEventLoop.__del__":
            return
        default(unraisable)

    sys.unraisablehook = hook


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="render", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), e.g. --set workerMode=job")
    ns = parser.parse_args(argv)
    try:
        result = render_stack(ns.stack, parse_overrides(ns.sets))
    except ConfigError as exc:
        print(f"render: invalid config for stack {ns.stack!r}: {exc}", file=sys.stderr)
        return 2
    written = write_result(result, ns.out)
    print(f"render: stack {ns.stack!r}: {len(written)} Kubernetes objects, "
          f"{len(result.azure_resources)} Azure resources, {len(result.other_resources)} other -> {ns.out}")
    return _render_helm_releases(result, ns.out)


def _render_helm_releases(result: RenderResult, out: Path) -> int:
    from tools import helm_render
    from tools.helm_install import HelmError

    try:
        rendered = helm_render.render_releases(result)
    except (HelmError, helm_render.ChartRenderError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    helm_render.write_releases(rendered, out)
    for rr in rendered:
        print(f"render: helm release {rr.release.name!r} ({rr.release.chart} {rr.release.version}, "
              f"Kubernetes {rr.kube_version}): {len(rr.objects)} objects -> {out / 'helm' / rr.release.name}")
    return 0


if __name__ == "__main__":
    _quiet_loop_finalizers()
    sys.exit(main())
