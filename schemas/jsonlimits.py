"""The limits of the JSON mlbus accepts, one rule for the HTTP edge and the message codec.

What ingest accepts, every worker can decode: ingest reads a body with `loads_strict` (the edge),
and the codec checks the same bounds before it hands a message to pydantic, whose JSON parser
stops at 200 levels. A body's nesting is bounded at `MAX_DEPTH`; an envelope adds a few levels
around its payload (`ENVELOPE_DEPTH`), still far under any decoder's limit.

- nesting: at most `MAX_DEPTH` levels of objects and arrays (the body itself is level 1);
- numbers: integers within signed 64 bits (what MongoDB and ClearML store), finite floats
  (`NaN`, `Infinity` and `1e400` are not JSON numbers mlbus can carry);
- text: UTF-8 JSON, nothing after the value.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: Levels of nesting a request body may have (the body is level 1, its `input` level 2).
MAX_DEPTH = 64
#: Levels an envelope may have: a body's, plus the envelope and payload around its `input`.
ENVELOPE_DEPTH = MAX_DEPTH + 4
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_INT_DIGITS = len(str(INT_MIN))  # sign and 19 digits: anything longer is out of range


class JSONLimitError(ValueError):
    """JSON that mlbus does not accept: malformed, too deep, or with a number it cannot carry.
    The message says which, in words a client can act on."""


def _int(text: str) -> int:
    if len(text) > _INT_DIGITS or not INT_MIN <= (value := int(text)) <= INT_MAX:
        shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text)} digits)"
        raise JSONLimitError(f"the integer {shown} is outside the signed 64-bit range")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONLimitError(f"the number {text[:24]} is too large for a 64-bit float")
    return value


def _constant(text: str) -> Any:
    raise JSONLimitError(f"{text} is not a JSON number")


def loads_strict(raw: bytes | str) -> Any:
    """Parse JSON under mlbus's limits, or raise JSONLimitError saying what is wrong."""
    try:
        value = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError as exc:
        raise JSONLimitError(f"nesting deeper than {MAX_DEPTH} levels") from exc
    except UnicodeDecodeError as exc:
        raise JSONLimitError("the body is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise JSONLimitError(
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    check_depth(value, MAX_DEPTH)
    return value


def depth_of(value: Any, limit: int) -> int:
    """Levels of nesting of a parsed value, counting no further than `limit + 1`."""
    deepest, level = 0, [(value, 1)]
    while level:
        node, depth = level.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        level.extend((child, depth + 1) for child in children)
    return deepest


def check_depth(value: Any, limit: int) -> None:
    """JSONLimitError when `value` nests deeper than `limit` levels."""
    if depth_of(value, limit) > limit:
        raise JSONLimitError(f"nesting deeper than {limit} levels")


def raw_depth(raw: bytes, limit: int) -> int:
    """Levels of nesting of JSON bytes, from brackets outside strings, counting no further than
    `limit + 1`: a check cheap enough to run on every message before a decoder recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):  # { [
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in (0x7D, 0x5D):  # } ]
            depth -= 1
    return deepest
