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
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python tools/render.py` from anywhere
    sys.path.insert(0, str(ROOT))

import pulumi  # noqa: E402
import yaml  # noqa: E402
from pulumi.runtime import settings  # noqa: E402

from components.config import PROJECT, ConfigError, PlatformConfig, load_config  # noqa: E402
from tools import helm_render  # noqa: E402
from tools.helm_install import HelmError  # noqa: E402
from tools.redaction import REDACTED_B64, redact_strings, redacted_inputs  # noqa: E402
from tools.render_mocks import (  # noqa: E402
    RecordedResource,
    RecordingMocks,
    RecordingMonitor,
    RenderResult,
    normalize,
)
from tools.variants import RENDER_PLACEHOLDERS  # noqa: E402

STACKS_DIR = ROOT / "stacks"
# Order the API server should see them in (also the file numbering).
KIND_ORDER = [
    "Namespace", "ServiceAccount", "Secret", "ConfigMap", "Service", "PersistentVolumeClaim",
    "StatefulSet", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
    "TriggerAuthentication", "ScaledObject", "ScaledJob",
]


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


def _k8s_object(res: RecordedResource) -> dict[str, Any]:
    obj = redacted_inputs(res)
    obj = {k: v for k, v in obj.items() if not k.startswith("__")}
    if obj.get("kind") == "Secret":
        keys = set((res.inputs.get("stringData") or {}).keys()) | set((res.inputs.get("data") or {}).keys())
        obj.pop("stringData", None)
        obj["data"] = {k: REDACTED_B64 for k in sorted(keys)}
    ordered: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
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


def render_placeholders(raw: Mapping[str, Any]) -> dict[str, str]:
    """The placeholders (tools/variants.py) for the deployer's keys an aks stack has not set."""
    def get(key: str) -> str:
        return str(raw.get(f"{PROJECT}:{key}", raw.get(key, "")))

    if get("target") != "aks" or get("apiServerAccess") == "private":
        return {}
    return {f"{PROJECT}:{key}": value for key, value in RENDER_PLACEHOLDERS.items()
            if f"{PROJECT}:{key}" not in raw and key not in raw}


def offline_config(stack: str, overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The raw config an offline render evaluates: the stack file, the overrides, then the
    placeholders for the deployer's keys still unset."""
    raw = {**read_stack_config(stack),
           **{(k if ":" in k else f"{PROJECT}:{k}"): v for k, v in (overrides or {}).items()}}
    raw.update(render_placeholders(raw))
    return raw


def render_stack(stack: str, overrides: Mapping[str, str] | None = None) -> RenderResult:
    """Evaluate ``stack`` (stacks/Pulumi.<stack>.yaml + overrides) under mocks.

    Raises ConfigError (before any resource is registered) on bad config. Safe to call
    repeatedly in one process: fresh event loop, fresh mocks, runtime settings reset.
    """
    raw = offline_config(stack, overrides)
    config = load_config(raw)
    return evaluate(config, stack=stack, raw_config=raw)


def evaluate(config: PlatformConfig, *, stack: str = "test", raw_config: Mapping[str, Any] | None = None,
             construct: Callable[[], Any] | None = None) -> RenderResult:
    """Run the program under mocks. ``construct`` builds the platform and returns an object
    with ``outputs`` (name -> Output); by default the stack program's way: ``Platform`` with
    the config's keys. tests/infra/test_platform_component.py passes the provider's way."""
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
                outputs[key] = normalize(await out.future())
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
    (out / "outputs.json").write_text(json.dumps(redact_strings(safe_outputs), indent=2) + "\n")
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
        overrides = parse_overrides(ns.sets)
        for key, value in render_placeholders({**read_stack_config(ns.stack), **overrides}).items():
            print(f"render: {key} is not set: rendering with {value} (a documentation range); "
                  "pulumi up requires your own", file=sys.stderr)
        result = render_stack(ns.stack, overrides)
    except ConfigError as exc:
        print(f"render: invalid config for stack {ns.stack!r}: {exc}", file=sys.stderr)
        return 2
    written = write_result(result, ns.out)
    print(f"render: stack {ns.stack!r}: {len(written)} Kubernetes objects, "
          f"{len(result.azure_resources)} Azure resources, {len(result.other_resources)} other -> {ns.out}")
    return _render_helm_releases(result, ns.out)


def _render_helm_releases(result: RenderResult, out: Path) -> int:
    try:
        rendered = helm_render.render_releases(result)
    except (HelmError, helm_render.ChartRenderError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    helm_render.remove_stale(rendered, out)
    helm_render.write_releases(rendered, out)
    for rr in rendered:
        print(f"render: helm release {rr.release.name!r} ({rr.release.chart} {rr.release.version}, "
              f"Kubernetes {rr.kube_version}): {len(rr.objects)} objects -> {out / 'helm' / rr.release.name}")
    return 0


if __name__ == "__main__":
    _quiet_loop_finalizers()
    sys.exit(main())
