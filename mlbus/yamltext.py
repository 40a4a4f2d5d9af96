"""A small YAML writer for generated manifests: block style, keys in the order given, and every
string that YAML would read as something else (a number, a boolean, null, a flag) quoted.
Enough for Kubernetes documents made of dicts, lists, strings, numbers and booleans; no
dependency, and the same bytes on every run (tests compare them with the files on disk).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


def _lines(value: Any, indent: int) -> Iterator[str]:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                yield f"{pad}{_scalar(key)}:"
                yield from _lines(item, indent + (0 if isinstance(item, list) else 2))
            else:
                yield f"{pad}{_scalar(key)}: {_inline(item)}"
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                first, *rest = list(_lines(item, indent + 2))
                yield f"{pad}- {first.lstrip()}"
                yield from rest
            else:
                yield f"{pad}- {_inline(item)}"


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def to_yaml(docs: list[dict[str, Any]], header: str = "") -> str:
    """Documents as YAML (block style, keys in the order given), after a `header` comment."""
    return header + "".join("---\n" + "\n".join(_lines(doc, 0)) + "\n" for doc in docs)
