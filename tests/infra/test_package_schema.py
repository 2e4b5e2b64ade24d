"""The multi-language package's schema, from the SDK's own analyzer, against the config model.

``pulumi package add`` generates every language's SDK from the schema the provider serves
(provider/package.py: the SDK's ComponentProvider, whose analyzer reads Platform's
annotations). These tests build that schema here and compare each input with
PlatformConfig, key by key: name, type, default, required, secret (and description).
"""

# No `from __future__ import annotations`: the analyzer reads annotations as objects.
import copy
import json
from typing import Any, Literal, get_args, get_origin

import pulumi
import pytest
from pulumi.provider.experimental.analyzer import Analyzer
from pydantic import Field, SecretStr

from components.config import PROJECT, PlatformConfig
from components.platform import SECRET_OUTPUTS, Platform
from components.platform_args import ArgsSpec, UnsupportedInputError
from provider.package import PLATFORM_TOKEN, PlatformProvider, complete_schema, package_schema

SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", SecretStr: "string"}


def expected_inputs(model: type = PlatformConfig) -> dict[str, dict[str, Any]]:
    """What each input must be, read from the model alone (not from the generator)."""
    out: dict[str, dict[str, Any]] = {}
    for key, info in model.model_fields.items():
        ann = info.annotation
        if get_origin(ann) is Literal:
            typ: Any = ("enum", sorted(get_args(ann)))
        else:
            typ = SIMPLE[ann]
        default = None if info.is_required() or ann is SecretStr else info.default
        out[info.alias or key] = {"type": typ, "default": default, "required": info.is_required(),
                                  "secret": ann is SecretStr, "description": info.description}
    return out


def schema_mismatches(schema: dict[str, Any], model: type = PlatformConfig) -> list[str]:
    """Every difference between the schema's Platform inputs and the model, one line each."""
    resource = schema["resources"][PLATFORM_TOKEN]
    inputs, types = resource["inputProperties"], schema.get("types", {})
    expected = expected_inputs(model)
    problems = [f"{name}: in the schema, not a config key" for name in sorted(set(inputs) - set(expected))]
    problems += [f"{name}: a config key missing from the schema" for name in sorted(set(expected) - set(inputs))]
    for name in sorted(set(inputs) & set(expected)):
        prop, want = inputs[name], expected[name]
        if "$ref" in prop:
            enum = types.get(prop["$ref"].removeprefix("#/types/"), {})
            got: Any = ("enum", sorted(v["value"] for v in enum.get("enum", [])))
        else:
            got = prop.get("type")
        if got != want["type"]:
            problems.append(f"{name}: type {got} != {want['type']}")
        if prop.get("default") != want["default"]:
            problems.append(f"{name}: default {prop.get('default')!r} != {want['default']!r}")
        if (name in resource.get("requiredInputs", [])) != want["required"]:
            problems.append(f"{name}: required should be {want['required']}")
        if bool(prop.get("secret")) != want["secret"]:
            problems.append(f"{name}: secret should be {want['secret']}")
        if prop.get("description") != want["description"]:
            problems.append(f"{name}: description differs from the model's")
        if prop.get("plain") is not True:
            problems.append(f"{name}: must be plain (it decides which resources exist)")
    return problems


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return package_schema()


def test_schema_inputs_equal_the_config_model_key_by_key(schema):
    assert schema["name"] == PROJECT and PLATFORM_TOKEN in schema["resources"]
    assert schema["resources"][PLATFORM_TOKEN]["isComponent"] is True
    assert schema_mismatches(schema) == []
    assert len(schema["resources"][PLATFORM_TOKEN]["inputProperties"]) == len(PlatformConfig.model_fields)


def test_the_sdk_analyzer_alone_gives_the_names_types_and_required_keys():
    """Before provider/package.py adds descriptions/defaults/secret: the analyzer's own view."""
    result = Analyzer(PROJECT).analyze([Platform])
    platform = result["component_definitions"]["Platform"]
    assert set(platform.inputs) == {info.alias for info in PlatformConfig.model_fields.values()}
    assert all(prop.optional for prop in platform.inputs.values())  # every key has a default
    assert platform.inputs["workerMaxReplicas"].type.value == "integer"
    assert platform.inputs["workSecondsMax"].type.value == "number"
    assert platform.inputs["monitoring"].type.value == "boolean"
    assert platform.inputs["workerMode"].ref == f"#/types/{PROJECT}:index:WorkerMode"
    assert result["type_definitions"]["WorkerMode"].module == "components.platform_args"
    # No default, no secret in the analyzer's schema: that is what complete_schema adds.
    raw = json.loads(PlatformProvider.__mro__[1]([Platform], PROJECT, None, "0.0.0").schema)
    props = raw["resources"][PLATFORM_TOKEN]["inputProperties"]
    assert not any("default" in p or "secret" in p or "description" in p for p in props.values())


def test_outputs_are_the_stack_outputs_and_secret_ones_are_marked(schema, rendered):
    props = schema["resources"][PLATFORM_TOKEN]["properties"]
    stack = rendered("local")
    assert set(props) == set(stack.outputs)
    assert {name for name, p in props.items() if p.get("secret")} == set(SECRET_OUTPUTS) == stack.secret_outputs
    assert "grafanaAdminPassword" not in schema["resources"][PLATFORM_TOKEN]["required"]


def test_every_type_lands_in_the_index_module(schema):
    assert schema["types"], "the Literal keys should give enum types"
    assert all(token.startswith(f"{PROJECT}:index:") for token in schema["types"])


# -- a key added to the model follows into the schema, untouched code --------------------
class Extended(PlatformConfig):
    connection_budget: int = Field(200, ge=1, description="Connections the apps may open in total.")
    memory_headroom_percent: float = Field(20.0, description="Share of maxmemory kept free.")
    scaler_mode: Literal["fast", "slow"] = Field("fast", description="A new choice.")
    registry_token: SecretStr = Field(SecretStr("t"), description="A secret key.")


def _schema_for(model: type) -> dict[str, Any]:
    spec = ArgsSpec(model, name=f"{model.__name__}Args")

    class ExtendedPlatform(pulumi.ComponentResource):
        """A Platform over the extended model."""
        target: pulumi.Output[str]

        def __init__(self, name: str, args: spec.args, opts=None):  # type: ignore[valid-type]
            super().__init__(f"{PROJECT}:index:ExtendedPlatform", name, None, opts)

    provider = PlatformProvider.__mro__[1]([ExtendedPlatform], PROJECT, None, "0.0.0")
    return complete_schema(json.loads(provider.schema), spec, f"{PROJECT}:index:ExtendedPlatform", ())


def test_a_key_added_to_the_model_is_an_input_with_its_type_default_and_secret():
    schema = _schema_for(Extended)
    schema["resources"][PLATFORM_TOKEN] = schema["resources"].pop(f"{PROJECT}:index:ExtendedPlatform")
    assert schema_mismatches(schema, Extended) == []
    inputs = schema["resources"][PLATFORM_TOKEN]["inputProperties"]
    assert inputs["connectionBudget"] == {"type": "integer", "plain": True, "default": 200,
                                          "description": "Connections the apps may open in total."}
    assert inputs["registryToken"]["secret"] is True and "default" not in inputs["registryToken"]
    assert schema["types"][f"{PROJECT}:index:ScalerMode"]["enum"][0]["value"] == "fast"


def test_a_union_typed_key_is_refused_naming_it():
    class WithUnion(PlatformConfig):
        shard_count: int | str = Field(1, description="Ambiguous.")

    with pytest.raises(UnsupportedInputError, match=f"{PROJECT}:shardCount: .*union"):
        ArgsSpec(WithUnion)


# -- the comparison can fail, naming the key -----------------------------------------------
@pytest.mark.parametrize("mutate, expected", [
    (lambda r, t: r["inputProperties"].pop("workerMode"), "workerMode: a config key missing from the schema"),
    (lambda r, t: r["inputProperties"]["listLength"].update(type="string"), "listLength: type string != integer"),
    (lambda r, t: r["inputProperties"]["namespace"].update(default="default"), "namespace: default 'default' != 'platform'"),
    (lambda r, t: r["requiredInputs"].append("redisDb"), "redisDb: required should be False"),
    (lambda r, t: r["inputProperties"]["queueName"].update(secret=True), "queueName: secret should be False"),
    (lambda r, t: t[f"{PROJECT}:index:WorkerMode"]["enum"].pop(), "workerMode: type ('enum', ['deployment'])"),
    (lambda r, t: r["inputProperties"].update(extraKey={"type": "string"}), "extraKey: in the schema, not a config key"),
])
def test_schema_mismatches_names_a_seeded_defect(schema, mutate, expected):
    broken = copy.deepcopy(schema)
    mutate(broken["resources"][PLATFORM_TOKEN], broken["types"])
    problems = schema_mismatches(broken)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


# -- the plugin as Pulumi runs it ------------------------------------------------------------
def test_the_plugin_entry_point_serves_this_schema_over_grpc(schema):
    """`python provider <engine>`, as the Python language host runs a plugin (cwd: the plugin
    folder, not the repository): it prints its port, and GetSchema answers the schema above."""
    from pathlib import Path

    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    from tests.infra.plugin_process import plugin_channel

    plugin = Path(__file__).resolve().parents[2] / "provider"
    assert (plugin / "PulumiPlugin.yaml").is_file() and (plugin / "__main__.py").is_file()
    with plugin_channel([str(plugin), "127.0.0.1:1"], cwd=plugin, ready_timeout=30) as channel:
        stub = provider_pb2_grpc.ResourceProviderStub(channel)
        served = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=30)
    assert json.loads(served.schema) == schema
