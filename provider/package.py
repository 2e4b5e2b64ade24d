"""The multi-language package: ``Platform`` served by Pulumi's Python component provider.

``PlatformProvider`` is the SDK's ``ComponentProvider`` (pulumi.provider.experimental): its
analyzer infers the package schema from ``Platform``'s annotations (inputs from
``PlatformArgs``, generated from the config model; outputs from the class annotations).
``pulumi package add`` asks the running provider for that schema and generates an SDK from
it in the user's language (provider/__main__.py runs it).

The analyzer's schema has no ``default`` and no ``secret`` on a property, and takes
descriptions only from docstrings in source (a generated TypedDict has none). This class
adds exactly those three to the schema it serves, from the same model, and nothing else:
names, types, enums and required-ness stay the analyzer's. That is why the host here is
``pulumi.provider.main(PlatformProvider(), args)`` rather than ``component_provider_host``,
which builds a plain ``ComponentProvider`` and calls the same ``main``.
"""

from __future__ import annotations

import enum
import json
from typing import Any

from pulumi.provider.experimental.component import ComponentProvider

from components import versions
from components.config import PROJECT
from components.platform import SECRET_OUTPUTS, Platform
from components.platform_args import SPEC, ArgsSpec

PLATFORM_TOKEN = f"{PROJECT}:index:Platform"


def schema_default(value: Any) -> Any:
    """A model default as the schema writes it (enum members as their value)."""
    return value.value if isinstance(value, enum.Enum) else value


def complete_schema(schema: dict[str, Any], spec: ArgsSpec = SPEC, token: str = PLATFORM_TOKEN,
                    secret_outputs: tuple[str, ...] = SECRET_OUTPUTS) -> dict[str, Any]:
    """Add each input's description, default and secret flag from PlatformConfig, and the
    secret flag of the secret outputs. Fails naming the key if the analyzer's schema and
    the model disagree on which inputs exist."""
    resource = schema["resources"][token]
    inputs = resource["inputProperties"]
    fields = spec.model.model_fields
    expected = {info.alias or key: key for key, info in fields.items()}
    if set(inputs) != set(expected):
        raise ValueError(f"analyzer inputs and config keys differ: only in schema {sorted(set(inputs) - set(expected))}, "
                         f"only in model {sorted(set(expected) - set(inputs))}")
    for name, key in expected.items():
        info = fields[key]
        prop = inputs[name]
        _, secret = spec.input_type(key)
        if info.description:
            prop["description"] = info.description
        if not info.is_required() and info.default is not None and not secret:
            prop["default"] = schema_default(info.default)
        if secret:
            prop["secret"] = True
    for name in secret_outputs:
        resource["properties"][name]["secret"] = True
    return schema


class PlatformProvider(ComponentProvider):
    """The SDK's component provider for ``Platform``, serving the completed schema."""

    def __init__(self, version: str = versions.PACKAGE_VERSION) -> None:
        super().__init__([Platform], PROJECT, None, version)
        self.schema = json.dumps(complete_schema(json.loads(self.schema or "{}")))


def package_schema() -> dict[str, Any]:
    """The schema ``pulumi package get-schema provider`` would print (no engine needed)."""
    return json.loads(PlatformProvider().schema or "{}")
