"""``Platform`` as one component, and the same objects from both of its uses.

- parity: for every variant ``make render`` validates (tests/infra/validation/render.py,
  rendered by tools/render.py in a subprocess, as ``make render`` does), constructing
  ``Platform`` the way another language's SDK does (camelCase inputs as the schema types
  them, through the SDK ComponentProvider's ``construct``) yields exactly the same
  Kubernetes objects, Azure resources, other resources and outputs;
- URNs: each component the Platform creates directly registers the alias
  ``Alias(parent=ROOT_STACK_RESOURCE)``, and removing the Platform from the tree gives back
  exactly the URNs of the program built at the stack root (the program before Platform);
- bad inputs fail naming the key, before any resource is registered.
"""

from __future__ import annotations

import json
import types
from typing import Any

import pulumi
import pytest

from components.config import ConfigError, load_config
from components.platform import Platform, _build
from components.platform_args import config_from_args
from provider.package import PLATFORM_TOKEN, PlatformProvider
from tests.infra.validation.manifests import load_json, load_k8s_dir
from tests.infra.validation.render import BY_ID, VARIANT_IDS, _render_dir
from tools.render import evaluate, offline_config

_PROVIDER = PlatformProvider()


def sdk_inputs(stack: str, settings: dict[str, str]) -> dict[str, Any]:
    """What a TypeScript/YAML program equal to the stack sends: the keys the stack sets,
    camelCase, typed as the schema says (enums as strings), numbers as wire floats."""
    raw = offline_config(stack)
    raw.update(settings)
    cfg = load_config(raw)
    values = cfg.model_dump(mode="json", by_alias=True, include=cfg.model_fields_set)
    return {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in values.items()}


def render_through_provider(stack: str, settings: dict[str, str]):
    inputs = sdk_inputs(stack, settings)
    cfg = load_config(offline_config(stack, settings))

    def construct() -> Any:
        result = _PROVIDER.construct("platform", PLATFORM_TOKEN, inputs, pulumi.ResourceOptions())
        return types.SimpleNamespace(outputs=result.state)

    return evaluate(cfg, stack=stack, raw_config={}, construct=construct)


def _by_type_name(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda r: (r["type"], r["name"]))


@pytest.mark.parametrize("variant_id", VARIANT_IDS)
def test_provider_construct_yields_exactly_what_make_render_renders(variant_id):
    variant = BY_ID[variant_id]
    out = _render_dir(variant_id)  # tools/render.py --stack ... --set ... --out (make render)
    via_provider = render_through_provider(variant.stack, dict(variant.settings))

    rendered_objects = load_k8s_dir(out)
    assert len(via_provider.k8s_objects) == len(rendered_objects) > 20
    assert via_provider.k8s_objects == rendered_objects
    assert _by_type_name(json.loads(json.dumps(via_provider.azure_resources))) == \
        _by_type_name(load_json(out / "azure-resources.json"))
    assert _by_type_name(json.loads(json.dumps(via_provider.other_resources))) == \
        _by_type_name(load_json(out / "other-resources.json"))
    safe = {k: ("[secret]" if k in via_provider.secret_outputs else v) for k, v in via_provider.outputs.items()}
    assert json.loads(json.dumps(safe)) == load_json(out / "outputs.json")


def test_parity_fails_when_the_provider_path_drifts():
    """Test of the test: one input lost on the way (as a schema/model mismatch would) shows."""
    variant = BY_ID["local-deployment"]
    out = _render_dir(variant.id)
    settings = dict(variant.settings, workerMaxReplicas="11")  # the stack file says 10
    drifted = render_through_provider(variant.stack, settings)
    assert drifted.k8s_objects != load_k8s_dir(out)
    diff = [o for o in drifted.k8s_objects if o not in load_k8s_dir(out)]
    # maxReplicaCount, and the alert that fires at workerMaxReplicas.
    assert sorted(o["kind"] for o in diff) == ["PrometheusRule", "ScaledObject"]


# -- URNs of existing stacks --------------------------------------------------------------
def _root_tree(stack: str, settings: dict[str, str]):
    """The program before Platform: the same components, parented by the stack."""
    cfg = load_config(offline_config(stack, settings))
    return evaluate(cfg, stack=stack, raw_config={},
                    construct=lambda: types.SimpleNamespace(outputs=_build(cfg, None)))


@pytest.mark.parametrize("variant_id", ["local-job-sidecar", "aks-deployment", "aks-deployment-classic"])
def test_components_under_platform_alias_their_stack_root_urns(variant_id, rendered):
    variant = BY_ID[variant_id]
    new = rendered(variant.stack, **dict(variant.settings))
    platform = new.by_type(PLATFORM_TOKEN)
    assert len(platform) == 1
    top = [r for r in new.resources if r.parent == platform[0].urn]
    assert len(top) >= 11
    for res in new.resources:
        no_parent = [a for a in res.aliases if a.get("noParent")]
        if res in top:
            # Same name and type ("" = unchanged), no parent: the URN it had at the stack root.
            assert no_parent == [{"name": "", "type": "", "stack": "", "project": "", "noParent": True}], res.name
        else:
            assert not no_parent, f"{res.type} {res.name} should keep its URN without an alias"

    old = _root_tree(variant.stack, dict(variant.settings))
    # The mocks qualify a stack-root resource's type with pulumi:pulumi:Stack (the engine
    # does not): so "moved under Platform" reads as "Platform$" replacing "Stack$" here.
    moved = {r.urn.replace(f"{PLATFORM_TOKEN}$", "pulumi:pulumi:Stack$") for r in new.resources
             if r.type != PLATFORM_TOKEN}
    assert moved == {r.urn for r in old.resources}
    unchanged = {r.urn for r in new.resources if r not in top and r.type != PLATFORM_TOKEN}
    assert unchanged <= {r.urn for r in old.resources}, "only the Platform's direct children change URN"


# -- inputs ----------------------------------------------------------------------------------
def test_a_bad_input_fails_naming_its_key_before_any_resource(pulumi_mocks):
    with pytest.raises(ConfigError, match=r"redis-keda-platform:workerMode: .*'deployment' or 'job'"):
        Platform("platform", {"worker_mode": "jobs"})
    with pytest.raises(ConfigError, match="redis-keda-platform:noSuchKey: unknown config key"):
        config_from_args({"noSuchKey": 1})
    assert pulumi_mocks.recorded == []


def test_inputs_from_the_provider_validate_like_the_stack_config():
    mapped = _PROVIDER.map_inputs({"workerMode": "job", "workerMaxReplicas": 3.0, "workSecondsMax": 2.5},
                                  _PROVIDER._component_defs["Platform"])
    cfg = config_from_args(mapped)
    assert (cfg.worker_mode, cfg.worker_max_replicas, cfg.work_seconds_max) == ("job", 3, 2.5)
    assert cfg == load_config({"workerMode": "job", "workerMaxReplicas": "3", "workSecondsMax": "2.5"})
    with pytest.raises(Exception, match="Invalid value jobs"):
        _PROVIDER.map_inputs({"workerMode": "jobs"}, _PROVIDER._component_defs["Platform"])
