"""docs/configuration.md lists every stack config key with its type and default, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from components.config import pulumi_config_block

CONFIG_DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(?P<key>[A-Za-z]+)` \| (?P<type>string|integer|boolean) \| `(?P<default>[^`]*)` \|", re.M)


def _doc_rows() -> dict[str, tuple[str, str]]:
    return {m["key"]: (m["type"], m["default"]) for m in ROW.finditer(CONFIG_DOC.read_text())}


def _expected_default(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return '""' if value == "" else str(value)


def test_config_doc_table_matches_the_model():
    rows = _doc_rows()
    block = pulumi_config_block()
    assert set(rows) == set(block), (
        f"docs/configuration.md table: missing {sorted(set(block) - set(rows))}, stale {sorted(set(rows) - set(block))}")
    for key, decl in block.items():
        assert rows[key] == (decl["type"], _expected_default(decl["default"])), (
            f"docs/configuration.md row for {key}: {rows[key]} != ({decl['type']}, {_expected_default(decl['default'])})")
