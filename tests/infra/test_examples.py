"""examples/: the TypeScript and Pulumi YAML programs that use the Platform, checked
against the package schema the provider serves (every property they set exists, with the
right type; every output they read exists), and their values accepted by the config model.

The TypeScript program is parsed with tree-sitter's TypeScript grammar (no compiler, no
generated SDK here: `pulumi package add` generates it, which needs the Pulumi CLI).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import tree_sitter_typescript
import yaml
from tree_sitter import Language, Node, Parser

from components.platform_args import config_from_args
from provider.package import PLATFORM_TOKEN, PlatformProvider, package_schema
from tools.variants import RENDER_PLACEHOLDERS

ROOT = Path(__file__).resolve().parents[2]
TS_EXAMPLE = ROOT / "examples" / "typescript" / "index.ts"
YAML_EXAMPLE = ROOT / "examples" / "yaml" / "Pulumi.yaml"
SDK_MODULE = "@pulumi/redis-keda-platform"
_TS = Parser(Language(tree_sitter_typescript.language_typescript()))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return package_schema()


# -- reading the programs --------------------------------------------------------------
def _text(node: Node) -> str:
    return node.text.decode()


def _walk(node: Node):
    yield node
    for child in node.children:
        yield from _walk(child)


def ts_usage(source: str) -> dict[str, Any]:
    """The Platform constructions in a TypeScript program: each property with its value as
    (kind, value), and every ``<platform var>.<output>`` read."""
    tree = _TS.parse(source.encode())
    assert not tree.root_node.has_error, "the TypeScript example does not parse"
    namespaces = {m.group(1) for m in re.finditer(r'import \* as (\w+) from "([^"]+)"', source) if m.group(2) == SDK_MODULE}
    props: dict[str, tuple[str, Any]] = {}
    variables: set[str] = set()
    for node in _walk(tree.root_node):
        if node.type != "new_expression":
            continue
        ctor = node.child_by_field_name("constructor")
        if ctor is None or _text(ctor) not in {f"{ns}.Platform" for ns in namespaces}:
            continue
        args = [c for c in node.child_by_field_name("arguments").named_children]
        assert len(args) >= 2 and args[1].type == "object", "new Platform(name, { ...args })"
        for pair in args[1].named_children:
            assert pair.type == "pair", f"only literal properties are checked: {_text(pair)}"
            props[_text(pair.child_by_field_name("key"))] = _ts_value(pair.child_by_field_name("value"), namespaces)
        declarator = node.parent
        if declarator is not None and declarator.type == "variable_declarator":
            variables.add(_text(declarator.child_by_field_name("name")))
    outputs = {_text(n.child_by_field_name("property")) for n in _walk(tree.root_node)
               if n.type == "member_expression" and _text(n.child_by_field_name("object")) in variables}
    return {"props": props, "outputs": outputs, "constructions": len(variables)}


def _ts_value(node: Node, namespaces: set[str]) -> tuple[str, Any]:
    text = _text(node)
    if node.type == "string":
        return "string", text[1:-1]
    if node.type == "number":
        return ("integer", int(text)) if re.fullmatch(r"\d+", text) else ("number", float(text))
    if node.type in ("true", "false"):
        return "boolean", node.type == "true"
    # A key the deployer must give (pulumi config set): checked with the render's placeholder.
    required = re.fullmatch(r'\w+\.require\("(\w+)"\)', text)
    if node.type == "call_expression" and required and required.group(1) in RENDER_PLACEHOLDERS:
        return "string", RENDER_PLACEHOLDERS[required.group(1)]
    parts = text.split(".")
    if node.type == "member_expression" and len(parts) == 3 and parts[0] in namespaces:
        return "enum", (parts[1], parts[2])
    return "unknown", text


def yaml_usage(source: str) -> dict[str, Any]:
    doc = yaml.safe_load(source)
    platforms = {name: r for name, r in doc["resources"].items() if r["type"] == PLATFORM_TOKEN}
    props: dict[str, tuple[str, Any]] = {}
    for r in platforms.values():
        for key, value in (r.get("properties") or {}).items():
            kind = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(type(value), "unknown")
            props[key] = (kind, value)
    refs = re.findall(r"\$\{(\w+)\.(\w+)\}", yaml.safe_dump(doc.get("outputs", {})))
    outputs = {prop for var, prop in refs if var in platforms}
    return {"props": props, "outputs": outputs, "constructions": len(platforms)}


# -- checking them against the schema ------------------------------------------------------
def usage_problems(usage: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    resource = schema["resources"][PLATFORM_TOKEN]
    inputs, outputs, types = resource["inputProperties"], resource["properties"], schema["types"]
    problems = [] if usage["constructions"] else ["no Platform is constructed"]
    for key, (kind, value) in usage["props"].items():
        prop = inputs.get(key)
        if prop is None:
            problems.append(f"{key}: no such input")
            continue
        if "$ref" in prop:
            type_name = prop["$ref"].rsplit(":", 1)[-1]
            members = types[prop["$ref"].removeprefix("#/types/")]["enum"]
            ok = (kind == "string" and value in {m["value"] for m in members}) or \
                 (kind == "enum" and value[0] == type_name and value[1] in {m["name"] for m in members})
            if not ok:
                problems.append(f"{key}: {value!r} is not a {type_name} ({[m['value'] for m in members]})")
            continue
        allowed = {"number": {"number", "integer"}}.get(prop["type"], {prop["type"]})
        if kind not in allowed:
            problems.append(f"{key}: a {kind} where the schema says {prop['type']}")
    problems += [f"output {name}: no such output" for name in sorted(usage["outputs"] - set(outputs))]
    return problems


def as_inputs(usage: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The values the SDK would send (enum members as their value)."""
    inputs = schema["resources"][PLATFORM_TOKEN]["inputProperties"]
    out: dict[str, Any] = {}
    for key, (kind, value) in usage["props"].items():
        if kind == "enum":
            members = schema["types"][inputs[key]["$ref"].removeprefix("#/types/")]["enum"]
            value = next(m["value"] for m in members if m["name"] == value[1])
        out[key] = value
    return out


EXAMPLES = {"typescript": (TS_EXAMPLE, ts_usage), "yaml": (YAML_EXAMPLE, yaml_usage)}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_sets_only_schema_inputs_with_their_types(example, schema):
    path, read = EXAMPLES[example]
    usage = read(path.read_text())
    assert len(usage["props"]) >= 10 and usage["outputs"]
    assert usage_problems(usage, schema) == []


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_values_pass_the_config_model_through_the_provider(example, schema):
    path, read = EXAMPLES[example]
    provider = PlatformProvider()
    mapped = provider.map_inputs(as_inputs(read(path.read_text()), schema), provider._component_defs["Platform"])
    cfg = config_from_args(mapped)
    assert cfg.target == ("aks" if example == "typescript" else "kind")


@pytest.mark.parametrize("edit, expected", [
    (("workerMaxReplicas: 20", "workerMaxReplica: 20"), "workerMaxReplica: no such input"),
    (("workerMaxReplicas: 20", 'workerMaxReplicas: "20"'), "workerMaxReplicas: a string where the schema says integer"),
    (("listLength: 5", "listLength: 5.5"), "listLength: a number where the schema says integer"),
    (("rkp.CacheApiReadPath.Central", "rkp.CacheApiReadPath.Sidecar"), "cacheApiReadPath: ('CacheApiReadPath', 'Sidecar')"),
    (('workerMode: "deployment"', 'workerMode: "deploy"'), "workerMode: 'deploy' is not a WorkerMode"),
    (("platform.redisPort", "platform.redisUrl"), "output redisUrl: no such output"),
])
def test_a_broken_typescript_example_fails_naming_the_property(schema, edit, expected):
    source = TS_EXAMPLE.read_text()
    assert edit[0] in source
    problems = usage_problems(ts_usage(source.replace(edit[0], edit[1])), schema)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_a_broken_yaml_example_fails_naming_the_property(schema):
    source = YAML_EXAMPLE.read_text().replace("monitoring: true", "monitoring: yes-please")
    assert usage_problems(yaml_usage(source), schema) == ["monitoring: a string where the schema says boolean"]
