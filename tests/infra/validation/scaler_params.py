"""Redis trigger metadata against KEDA's redis scaler parameters.

A trigger's ``metadata`` is ``map[string]string`` in the CRD, so a misspelt key
(``listname``, ``enableTls``) validates and KEDA silently uses the default. The scaler's
own parameter list (``redis-scaler-params.yaml``, summarised from
``pkg/scalers/redis_scaler.go`` at KEDA v2.20.2) says which keys exist and where KEDA
looks for each (``order``):

- ``triggerMetadata``: the key may appear in ``trigger.metadata`` (name or alias);
- ``resolvedEnv``: ``trigger.metadata["<name>FromEnv"]`` may name an env var of the
  scale target's container;
- ``authParams``: the key comes from a TriggerAuthentication parameter only, so in
  metadata it is ignored (``tls``, ``cert``, ``key``, ``keyPassword``, ``ca``).

On top of what KEDA accepts, the platform's rule: the Redis password never
appears in trigger metadata, not even as ``passwordFromEnv``; KEDA reads it through a
TriggerAuthentication's ``secretTargetRef``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .manifests import container_env, find, namespace, pod_templates, ref
from .paths import keda_schema_dir

PARAMS_FILE = "redis-scaler-params.yaml"
SECRET_PARAMS = {"password", "sentinelPassword"}
_BOOL_VALUES = {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
_INT_PARAMS = {"listLength", "activationListLength", "databaseIndex"}


@dataclass(frozen=True)
class ScalerParams:
    trigger_types: frozenset[str]
    params: dict[str, dict[str, Any]]

    def names(self, param: str) -> list[str]:
        """The parameter's name and its aliases."""
        return [param, *self.params[param].get("aliases", [])]

    def in_order(self, order: str) -> set[str]:
        return {p for p, spec in self.params.items() if order in spec.get("order", [])}

    def metadata_keys(self) -> dict[str, str]:
        """Allowed metadata key -> the parameter it sets."""
        keys: dict[str, str] = {}
        for param in self.in_order("triggerMetadata"):
            for n in self.names(param):
                keys[n] = param
        for param in self.in_order("resolvedEnv"):
            for n in self.names(param):
                keys[f"{n}FromEnv"] = param
        return keys

    def auth_param_keys(self) -> dict[str, str]:
        """Allowed TriggerAuthentication parameter -> the parameter it sets."""
        return {n: p for p in self.in_order("authParams") for n in self.names(p)}

    def auth_only_keys(self) -> dict[str, str]:
        only = self.in_order("authParams") - self.in_order("triggerMetadata") - self.in_order("resolvedEnv")
        return {n: p for p in only for n in self.names(p)}


@functools.cache
def load_params(path: str | None = None) -> ScalerParams:
    data = yaml.safe_load(Path(path or keda_schema_dir() / PARAMS_FILE).read_text())
    return ScalerParams(frozenset(data["trigger_types"]), data["params"])


def _triggers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj.get("kind") not in ("ScaledObject", "ScaledJob"):
        return []
    if not str(obj.get("apiVersion", "")).startswith("keda.sh/"):
        return []
    return [t for t in (obj.get("spec") or {}).get("triggers") or [] if isinstance(t, dict)]


def _auth_params(objects: list[dict[str, Any]], owner: dict[str, Any], trigger: dict[str, Any]) -> tuple[dict[str, Any] | None, set[str]]:
    """The TriggerAuthentication a trigger refers to, and its parameter names."""
    auth_ref = trigger.get("authenticationRef") or {}
    if not auth_ref.get("name"):
        return None, set()
    kind = auth_ref.get("kind", "TriggerAuthentication")
    ns = None if kind == "ClusterTriggerAuthentication" else namespace(owner)
    auth = find(objects, kind, ns, auth_ref["name"])
    if auth is None:
        return None, set()
    spec = auth.get("spec") or {}
    names = {p.get("parameter") for p in spec.get("secretTargetRef") or []}
    names |= {p.get("parameter") for p in spec.get("env") or []}
    names |= {p.get("parameter") for p in spec.get("configMapTargetRef") or []}
    return auth, {n for n in names if n}


def check_redis_triggers(objects: list[dict[str, Any]], params: ScalerParams | None = None) -> list[str]:
    """Problems with every redis/redis-cluster/redis-sentinel trigger in ``objects``."""
    params = params or load_params()
    allowed = params.metadata_keys()
    auth_only = params.auth_only_keys()
    auth_allowed = params.auth_param_keys()
    problems: list[str] = []
    for obj in objects:
        for index, trigger in enumerate(_triggers(obj)):
            if trigger.get("type") not in params.trigger_types:
                continue
            where = f"{ref(obj)} trigger[{index}] ({trigger.get('type')})"
            metadata = trigger.get("metadata") or {}
            for key in sorted(metadata):
                if key in SECRET_PARAMS or key.removesuffix("FromEnv") in SECRET_PARAMS:
                    problems.append(
                        f"{where}: metadata key {key!r}: the Redis password must reach KEDA only "
                        "through a TriggerAuthentication secretTargetRef, never trigger metadata"
                    )
                elif key in auth_only:
                    problems.append(
                        f"{where}: metadata key {key!r} is read from authParams only "
                        "(a TriggerAuthentication parameter); in metadata KEDA ignores it"
                    )
                elif key not in allowed:
                    problems.append(
                        f"{where}: unknown metadata key {key!r} for the redis scaler "
                        f"(allowed: {', '.join(sorted(allowed))})"
                    )
            problems += _check_values(where, metadata)
            auth, auth_names = _auth_params(objects, obj, trigger)
            if (trigger.get("authenticationRef") or {}).get("name") and auth is None:
                problems.append(f"{where}: authenticationRef {trigger['authenticationRef']!r} names no rendered object")
            for n in sorted(auth_names - set(auth_allowed)):
                problems.append(
                    f"{where}: {ref(auth)} parameter {n!r} is not an authParams parameter of the "
                    f"redis scaler (allowed: {', '.join(sorted(auth_allowed))})"
                )
            problems += _check_required(where, metadata, auth_names, params)
            if "enableTLS" in metadata and "tls" in auth_names:
                problems.append(f"{where}: both metadata enableTLS and auth parameter tls are set (KEDA rejects this)")
            problems += _check_from_env(where, obj, metadata, objects)
    return problems


def _present(metadata: dict[str, str], auth_names: set[str], params: ScalerParams, param: str) -> bool:
    order = params.params[param].get("order", [])
    for n in params.names(param):
        if "triggerMetadata" in order and str(metadata.get(n, "")).strip():
            return True
        if "resolvedEnv" in order and str(metadata.get(f"{n}FromEnv", "")).strip():
            return True
        if "authParams" in order and n in auth_names:
            return True
    return False


def _check_required(where: str, metadata: dict[str, str], auth_names: set[str], params: ScalerParams) -> list[str]:
    problems = []
    for param, spec in params.params.items():
        if spec.get("required") and not _present(metadata, auth_names, params, param):
            problems.append(f"{where}: required parameter {param!r} is missing or empty")
    has_address = _present(metadata, auth_names, params, "address")
    has_host_port = _present(metadata, auth_names, params, "host") and _present(metadata, auth_names, params, "port")
    if not (has_address or has_host_port):
        problems.append(f"{where}: needs 'address' or both 'host' and 'port' (KEDA: no addresses or hosts given)")
    return problems


def _check_values(where: str, metadata: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in metadata.items():
        if not isinstance(value, str):
            problems.append(f"{where}: metadata {key!r} must be a string, got {value!r}")
            continue
        if key in ("enableTLS", "unsafeSsl") and value not in _BOOL_VALUES:
            problems.append(f"{where}: metadata {key!r}={value!r} is not a boolean KEDA can parse")
        if key in _INT_PARAMS and not value.strip().lstrip("-").isdigit():
            problems.append(f"{where}: metadata {key!r}={value!r} is not an integer")
    return problems


def _check_from_env(where: str, obj: dict[str, Any], metadata: dict[str, str], objects: list[dict[str, Any]]) -> list[str]:
    """``<name>FromEnv`` must name an env var of the scale target's containers."""
    refs = {k: v for k, v in metadata.items() if k.endswith("FromEnv")}
    if not refs:
        return []
    env_names: set[str] = set()
    templates = _target_templates(obj, objects)
    for template in templates:
        for _, container in template.containers(include_init=False):
            env_names |= set(container_env(container))
    return [
        f"{where}: metadata {key!r} names env var {value!r}, which the scale target's containers do not set"
        for key, value in sorted(refs.items())
        if value not in env_names
    ]


def _target_templates(obj: dict[str, Any], objects: list[dict[str, Any]]):
    if obj.get("kind") == "ScaledJob":
        return pod_templates([obj])
    target = (obj.get("spec") or {}).get("scaleTargetRef") or {}
    owner = find(objects, target.get("kind", "Deployment"), namespace(obj), target.get("name"))
    return pod_templates([owner]) if owner else []


#: kombu's Redis transport's hash of delivered, unacknowledged messages (``Channel.unacked_key``).
KOMBU_UNACKED_KEY = "unacked"


def check_trigger_matches_target(objects: list[dict[str, Any]]) -> list[str]:
    """KEDA measures the Redis list the scaled worker consumes.

    The trigger's address (or host/port), ``enableTLS``, ``databaseIndex`` and
    ``listName`` must equal the scale target's ``REDIS_HOST:REDIS_PORT``, ``REDIS_TLS``,
    ``REDIS_DB`` and ``CELERY_QUEUE`` (literal env values; the contract's defaults apply
    when a variable or key is absent: db 0, TLS false).
    """
    problems: list[str] = []
    params = load_params()
    for obj in objects:
        for index, trigger in enumerate(_triggers(obj)):
            if trigger.get("type") not in params.trigger_types:
                continue
            where = f"{ref(obj)} trigger[{index}]"
            md = trigger.get("metadata") or {}
            templates = _target_templates(obj, objects)
            if not templates:
                problems.append(f"{where}: scale target not rendered")
                continue
            env: dict[str, str] = {}
            for template in templates:
                for _, container in template.containers(include_init=False):
                    for name_, entry in container_env(container).items():
                        if "value" in entry:
                            env.setdefault(name_, str(entry["value"]))
            if "REDIS_HOST" not in env or "REDIS_PORT" not in env:
                problems.append(f"{where}: scale target does not set REDIS_HOST/REDIS_PORT literally")
                continue
            expected_address = f"{env['REDIS_HOST']}:{env['REDIS_PORT']}"
            address = md.get("address") or md.get("addresses")
            if address is None and (md.get("host") or md.get("hosts")):
                address = f"{md.get('host') or md.get('hosts')}:{md.get('port') or md.get('ports')}"
            if address is not None and address != expected_address:
                problems.append(f"{where}: address {address!r} is not the worker's Redis {expected_address!r}")
            tls_trigger = md.get("enableTLS", "false").lower() in ("1", "t", "true")
            tls_env = env.get("REDIS_TLS", "false").lower() == "true"
            if tls_trigger != tls_env:
                problems.append(f"{where}: enableTLS={md.get('enableTLS')!r} but the worker's REDIS_TLS={env.get('REDIS_TLS')!r}")
            if md.get("databaseIndex", "0") != env.get("REDIS_DB", "0"):
                problems.append(f"{where}: databaseIndex={md.get('databaseIndex', '0')!r} but REDIS_DB={env.get('REDIS_DB', '0')!r}")
            # the queue itself, or kombu's unacked hash (the recovery trigger, deployment mode);
            # the first trigger must be the queue
            allowed = {env.get("CELERY_QUEUE")} if index == 0 else {env.get("CELERY_QUEUE"), KOMBU_UNACKED_KEY}
            if "CELERY_QUEUE" in env and md.get("listName") not in allowed:
                problems.append(f"{where}: listName={md.get('listName')!r} but CELERY_QUEUE={env['CELERY_QUEUE']!r}")
    return problems
