"""Settings errors for people: which variable, what is wrong, and never the value.

pydantic's own rendering of a ``ValidationError`` echoes ``input_value``; for a
settings model that is the whole environment it read (``REDIS_PASSWORD`` included).
"""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

S = TypeVar("S", bound=BaseSettings)


def format_errors(exc: ValidationError) -> str:
    """One line per error: ``  VARIABLE: message``; no input values, no URLs."""
    lines = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        where = ".".join(str(p) for p in err["loc"]).upper()
        lines.append(f"  {where + ': ' if where else ''}{err['msg']}")
    return "\n".join(lines)


def load_settings(cls: type[S], what: str, exit_code: int = 2) -> S:
    """``cls()`` from the environment, or a clean message on stderr and ``SystemExit(exit_code)``."""
    try:
        return cls()
    except ValidationError as exc:
        print(f"{what} configuration error:\n{format_errors(exc)}", file=sys.stderr)
        raise SystemExit(exit_code) from None
