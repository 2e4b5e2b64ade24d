"""Redaction of what a render writes: every secret path of a recorded resource, and every
value the mocks hand out for a secret (tools/render_mocks.py), wherever it appears."""

from __future__ import annotations

import base64
import json
from typing import Any

from tools.render_mocks import MOCK_SECRET_VALUES, RecordedResource

REDACTED = "REDACTED"
REDACTED_B64 = base64.b64encode(REDACTED.encode()).decode()


def _set_path(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        obj = obj[p]
    obj[path[-1]] = value


def redact_strings(value: Any) -> Any:
    if isinstance(value, str):
        for s in MOCK_SECRET_VALUES:
            if s in value:
                return REDACTED
        return value
    if isinstance(value, dict):
        return {k: redact_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_strings(v) for v in value]
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
    return redact_strings(data)
