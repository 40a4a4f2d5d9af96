"""Turning a request's `input` into ClearML hyperparameters.

- `{"lr": 0.01}` → section General, name lr;
- `{"Args/batch_size": 64}` → section Args, name batch_size;
- `{"Args": {"batch_size": 64}}` → the same (an object at the top level is a section);
- values are strings with a type hint, as ClearML stores them; lists and deeper objects are JSON.
"""

from __future__ import annotations

import json

from schemas.base import JSONValue

DEFAULT_SECTION = "General"


def _typed(value: JSONValue) -> tuple[str, str]:
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool"
    if isinstance(value, int):
        return str(value), "int"
    if isinstance(value, float):
        return repr(value), "float"
    if isinstance(value, str):
        return value, "str"
    if value is None:
        return "", "str"
    return json.dumps(value, separators=(",", ":")), "list" if isinstance(value, list) else "dict"


def _entry(section: str, name: str, value: JSONValue) -> dict[str, str]:
    text, kind = _typed(value)
    return {"section": section, "name": name, "value": text, "type": kind}


def to_hyperparams(data: dict[str, JSONValue]) -> list[dict[str, str]]:
    """ClearML `hyperparams` list for tasks.edit_hyper_params."""
    out: list[dict[str, str]] = []
    for key, value in data.items():
        section, _, name = key.partition("/")
        if name:
            out.append(_entry(section, name, value))
        elif isinstance(value, dict):
            out.extend(_entry(key, sub, v) for sub, v in value.items())
        else:
            out.append(_entry(DEFAULT_SECTION, key, value))
    return out
