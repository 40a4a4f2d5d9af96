"""Snapshots of every topic's payload schema, one file per message type and major version
(`<type>.v<N>.json`), and the rule a change must keep within a version: a reader must read every
message already written under it (messages wait on topics for days, and `mlbus dlq replay` sends
old ones again).

So, within a version: no new required field, no type narrowed (an enum may gain values and a
union members, never lose them; anything else must match). And, for the copies not yet upgraded
during a rolling upgrade, no field dropped that was required (unknown fields are ignored by every
reader, so new optional fields are free; a new enum value reaches an old reader as a dead letter,
replayed after the upgrade). Anything else needs a new major version (`TopicSpec.version`) and its
own snapshot. Descriptions, titles, examples and defaults may change freely.

    python -m schemas.snapshots            # write the snapshots of new versions
    python -m schemas.snapshots --accept   # also rewrite the current ones (after a review)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from schemas.topics import REGISTRY, REPLY_TEMPLATE, TopicSpec

HERE = Path(__file__).parent
TOPICS: tuple[TopicSpec, ...] = (*REGISTRY, REPLY_TEMPLATE)
#: Words about a schema that do not change what it accepts.
PROSE = ("description", "title", "examples")


def path_of(spec: TopicSpec) -> Path:
    return HERE / f"{spec.message_type}.v{spec.version}.json"


def schema_of(spec: TopicSpec) -> dict[str, Any]:
    found: dict[str, Any] = spec.payload.model_json_schema()
    return found


def breaks(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What in `new` keeps a reader from reading a message written against `old`, or a reader of
    `old` from reading one written against `new` (empty: compatible)."""
    return Compare(old.get("$defs", {}), new.get("$defs", {}))(_bare(old), _bare(new), "$")


def _bare(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _bare(v) for k, v in schema.items() if k not in PROSE and k != "$defs"}
    if isinstance(schema, list):
        return [_bare(v) for v in schema]
    return schema


def _resolve(schema: Any, defs: dict[str, Any]) -> Any:
    while isinstance(schema, dict) and "$ref" in schema and len(schema) == 1:
        schema = _bare(defs[schema["$ref"].rsplit("/", 1)[1]])
    if isinstance(schema, dict) and "$ref" in schema:  # a $ref with siblings (a described field)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**_bare(defs[schema["$ref"].rsplit("/", 1)[1]]), **rest}
    return schema


class Compare:
    """One comparison; a recursive type's definitions are compared once."""

    def __init__(self, old_defs: dict[str, Any], new_defs: dict[str, Any]) -> None:
        self.old_defs, self.new_defs = old_defs, new_defs
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, old: Any, new: Any, at: str) -> list[str]:
        refs = (_ref(old), _ref(new))
        if refs[0] and refs[1]:
            if refs in self.seen:
                return []
            self.seen.add(refs)
        return _compare(old, new, self, at)


def _ref(schema: Any) -> str:
    return str(schema.get("$ref", "")) if isinstance(schema, dict) else ""


def _compare(old: Any, new: Any, cmp: Compare, at: str) -> list[str]:
    old, new = _resolve(old, cmp.old_defs), _resolve(new, cmp.new_defs)
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [f"{at}: {old!r} became {new!r}"]
    if ("anyOf" in old) != ("anyOf" in new):  # one type is a union of one
        old, new = (old, {"anyOf": [new]}) if "anyOf" in old else ({"anyOf": [old]}, new)
    found = _fields(old, new, cmp, at) + _values(old, new, cmp, at)
    for key in sorted((set(old) | set(new)) - {"properties", "required", "enum", "anyOf"}):
        if key in ("items", "additionalProperties") and key in old and key in new:
            found += cmp(old[key], new[key], f"{at}[{key}]")
        elif key != "default" and old.get(key) != new.get(key):  # a default: any value reads
            found.append(f"{at}: {key} {old.get(key)!r} became {new.get(key)!r}")
    return found


def _fields(old: dict[str, Any], new: dict[str, Any], cmp: Compare, at: str) -> list[str]:
    before, after = old.get("properties", {}), new.get("properties", {})
    was, now = set(old.get("required", [])), set(new.get("required", []))
    found = [f"{at}.{f}: required now, absent from old messages" for f in sorted(now - was)]
    found += [
        f"{at}.{f}: required by old readers, no longer written" for f in sorted(was - set(after))
    ]
    for name in sorted(set(before) & set(after)):
        found += cmp(before[name], after[name], f"{at}.{name}")
    return found


def _values(old: dict[str, Any], new: dict[str, Any], cmp: Compare, at: str) -> list[str]:
    found: list[str] = []
    if "enum" in old or "enum" in new:
        gone = [v for v in old.get("enum", []) if v not in new.get("enum", [])]
        found += [f"{at}: value {v!r} no longer allowed" for v in gone]
        if "enum" not in old and "enum" in new:
            found.append(f"{at}: now limited to {new['enum']!r}")
    for member in old.get("anyOf", []):
        if not any(not cmp(member, m, at) for m in new.get("anyOf", [])):
            found.append(f"{at}: {member!r} no longer accepted")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.snapshots", description=__doc__)
    parser.add_argument("--accept", action="store_true", help="rewrite existing snapshots too")
    args = parser.parse_args(argv)
    for spec in TOPICS:
        path = path_of(spec)
        if args.accept or not path.exists():
            path.write_text(json.dumps(schema_of(spec), indent=1, sort_keys=True) + "\n")
            print(f"wrote {path.relative_to(HERE.parents[1])}")  # noqa: T201
    return 0
