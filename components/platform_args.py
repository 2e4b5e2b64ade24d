"""The ``Platform`` component's inputs, generated from the one config model.

``PlatformArgs`` is built from ``PlatformConfig.model_fields`` when this module is imported:
one input per config key (the Python name is the field's, the schema name its camelCase
alias), so a key added to the model is an input of the component, in every language,
with no second copy to edit. ``config_from_args`` turns the inputs back into a validated
``PlatformConfig`` (same rules, same messages naming the key as the stack config).

Why it looks like this: the limits of Pulumi's Python component provider
(``pulumi.provider.experimental``, SDK 3.272.0, ``analyzer.py``) that this design meets:
- the args arrive as a plain ``dict`` (TypedDict-style annotations are read; class-style
  or dataclass args are analysed but still receive a dict: pulumi/pulumi#18526), so the
  args type is a ``TypedDict``;
- ``Union`` types are refused ("Union types are not supported") and ``Literal`` is not
  understood at all (the analyzer fails with "issubclass() arg 1 must be a class"), so
  each ``Literal[...]`` key becomes an ``Enum`` and ``X | None``
  becomes a not-required ``X``; any other union fails here, naming the key;
- every type lands in the ``index`` module, so enum names must be unique package-wide:
  each is the key in PascalCase (``workerMode`` -> ``WorkerMode``);
- the analyzer reads property descriptions only from docstrings in source code and its
  schema has no ``default`` and no ``secret``: provider/package.py adds those three
  from the model to the schema it serves.

Inputs are *plain* (not ``pulumi.Input``): they decide which resources exist (target,
monitoring, worker mode) and are validated together before any resource is registered,
which an unknown ``Output`` value cannot be.
"""

import enum
import re
import types
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.alias_generators import to_camel, to_pascal

from components.config import PROJECT, PlatformConfig, load_config

_SIMPLE = (str, int, float, bool)


class UnsupportedInputError(TypeError):
    """A config key whose type the component provider cannot express (names the key)."""


def _member_name(value: Any) -> str:
    """An identifier for an enum member: ``replica-sidecar`` -> ``ReplicaSidecar``."""
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", str(value)))
    return name if name.isidentifier() else f"V{name}"


def _literal_enum(key: str, values: tuple[Any, ...], description: str | None) -> type[enum.Enum]:
    kinds = {type(v) for v in values}
    if len(kinds) != 1 or kinds.pop() not in (str, int):
        raise UnsupportedInputError(f"{PROJECT}:{to_camel(key)}: Literal{list(values)} mixes types or is not str/int")
    base = str if isinstance(values[0], str) else int
    members = {_member_name(v): v for v in values}
    if len(members) != len(values):
        raise UnsupportedInputError(f"{PROJECT}:{to_camel(key)}: values {list(values)} collide as enum member names")
    enum_cls = enum.Enum(to_pascal(key), members, type=base, module=__name__)  # type: ignore[misc]
    enum_cls.__doc__ = description or to_camel(key)
    return enum_cls


def _unwrap_optional(key: str, annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); any other union is refused by the analyzer."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) != 1:
            raise UnsupportedInputError(
                f"{PROJECT}:{to_camel(key)}: {annotation} is a union; Pulumi's component provider refuses "
                "union types: give the key one type")
        return rest[0], True
    return annotation, False


class ArgsSpec:
    """The component inputs derived from a config model (``PlatformConfig``, or a test's
    extension of it): one enum per Literal key, the TypedDict, each key's input type."""

    def __init__(self, model: type[BaseModel], name: str = "PlatformArgs"):
        self.model = model
        self.enums: dict[str, type[enum.Enum]] = {}
        for key, info in model.model_fields.items():
            annotation, _ = _unwrap_optional(key, info.annotation)
            if get_origin(annotation) is Literal:
                self.enums[key] = _literal_enum(key, get_args(annotation), info.description)
        fields: dict[str, Any] = {}
        for key, info in model.model_fields.items():
            typ, _ = self.input_type(key)
            # Every key with a default (all of them today) may be left out by the caller.
            fields[key] = typ if info.is_required() else NotRequired[typ]
        self.args = TypedDict(name, fields)  # type: ignore[misc]  # built from the model at run time
        self.args.__module__ = __name__
        self.args.__doc__ = f"The Platform's inputs: one per stack config key ({model.__name__})."

    def input_type(self, key: str) -> tuple[Any, bool]:
        """The Python type the analyzer sees for config field ``key``, and whether it is secret."""
        info = self.model.model_fields[key]
        annotation, _ = _unwrap_optional(key, info.annotation)
        if get_origin(annotation) is Literal:
            return self.enums[key], False
        if annotation is SecretStr:
            return str, True
        if annotation in _SIMPLE:
            return annotation, False
        raise UnsupportedInputError(f"{PROJECT}:{to_camel(key)}: type {annotation!r} has no component input mapping "
                                    "(str, int, float, bool, SecretStr, Literal[...] or X | None)")


SPEC = ArgsSpec(PlatformConfig)
#: config field -> the Enum generated for its Literal type.
ENUMS = SPEC.enums
#: The component's args type (a TypedDict; python names = PlatformConfig field names).
PlatformArgs = SPEC.args
input_type = SPEC.input_type


def args_from_config(cfg: PlatformConfig) -> dict[str, Any]:
    """What the stack program passes to ``Platform``: the keys the stack set, as given.
    Unset keys stay unset, so the model applies its defaults (and knows what was set)."""
    return {key: getattr(cfg, key) for key in cfg.model_fields_set}


def config_from_args(args: Mapping[str, Any]) -> PlatformConfig:
    """Validate the component's inputs with the config model. Raises ConfigError naming
    each bad key by its schema (camelCase) name, before any resource is registered."""
    raw: dict[str, Any] = {}
    for key, value in dict(args or {}).items():
        if value is None:
            continue
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, SecretStr):
            value = value.get_secret_value()
        raw[to_camel(key) if key in PlatformConfig.model_fields else key] = value
    return load_config(raw)
