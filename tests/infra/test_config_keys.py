"""Pulumi.yaml's ``config:`` block, the stack files and the model are one set of keys
(Pulumi.yaml cites this file), and every key feeds a component's Args or chooses an
implementation (components/platform.py: CONFIG_PREFIXES, DECISION_KEYS)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from components.config import PROJECT, PlatformConfig, load_config, pulumi_config_block
from components.platform import CONFIG_PREFIXES, DECISION_KEYS, args_from, config_field_for

ROOT = Path(__file__).resolve().parents[2]



def test_pulumi_yaml_declares_every_key_with_type_description_default():
    doc = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert doc["name"] == PROJECT
    assert doc["runtime"]["name"] == "python"
    assert doc["runtime"]["options"] == {"toolchain": "pip", "virtualenv": ".venv"}
    assert doc["stackConfigDir"] == "stacks"
    assert doc["config"] == pulumi_config_block()
    for key, decl in doc["config"].items():
        assert decl["type"] in ("string", "integer", "boolean") and decl["description"], key


def test_pulumi_yaml_defaults_validate_as_config():
    """The CLI injects Pulumi.yaml defaults into the config map: they must pass the model
    and equal the model's own defaults."""
    doc = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    from_yaml = load_config({f"{PROJECT}:{k}": v["default"] for k, v in doc["config"].items()})
    assert from_yaml == load_config({})




@pytest.mark.parametrize("stack", ["local", "aks"])
def test_stack_file_values_match_declared_pulumi_types(stack):
    """The Pulumi CLI checks stack values against Pulumi.yaml's types: an integer key given
    as "10" (a YAML string) or a float key given unquoted would fail `pulumi up`."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    values = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    python_type = {"integer": int, "boolean": bool, "string": str}
    for full_key, value in values.items():
        key = full_key.split(":", 1)[1]
        assert key in declared, f"{full_key} is not declared in Pulumi.yaml"
        expected = python_type[declared[key]["type"]]
        assert type(value) is expected, f"{full_key}: {value!r} should be a YAML {declared[key]['type']}"


def test_every_config_key_feeds_a_component_or_a_decision():
    fed = {config_field_for(cls, f.name) for cls in CONFIG_PREFIXES for f in dataclasses.fields(cls)} - {None}
    unused = set(PlatformConfig.model_fields) - fed - set(DECISION_KEYS)
    assert not unused, f"config keys no component reads: {sorted(unused)}"
    assert not fed & set(DECISION_KEYS)


def test_args_from_takes_the_prefixed_key_first_and_wiring_wins():
    from components.cache_api import CacheApiArgs
    from components.worker import CeleryWorkerArgs

    cfg = load_config({"workerMinReplicas": "2", "workerMaxReplicas": "7", "cacheApiMinReplicas": "3",
                       "workerImage": "r/w:9", "imagePullPolicy": "Always", "queueName": "q"})
    w = args_from(CeleryWorkerArgs, cfg, namespace="ns", endpoint=None, secret_name="s", keda_release=None)
    assert (w.min_replicas, w.max_replicas, w.image, w.image_pull_policy, w.queue_name) == (2, 7, "r/w:9", "Always", "q")
    assert w.successful_jobs_history_limit == 5  # no such key: the Args default
    api = args_from(CacheApiArgs, cfg, namespace="ns", endpoint=None, secret_name="s", replica_image="redis:1",
                    min_replicas=4, max_replicas=9)
    assert (api.min_replicas, api.max_replicas, api.replica_image) == (4, 9, "redis:1")
