"""``get_all`` filtering: tag expressions, regex names, date filters, nested projection, paging."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

from clearml_sim import errors
from clearml_sim.state import Doc, SimState
from clearml_sim.timeutil import iso, parse_ts

_MISSING = object()
Tree = dict[str, Any]


class TagFilter:
    """A server tag expression: plain tags match any, ``-tag`` excludes, ``__$all``/``__$not``."""

    def __init__(self, values: Sequence[str]) -> None:
        self.any_of: set[str] = set()
        self.all_of: set[str] = set()
        self.none_of: set[str] = set()
        mode_all, negate = False, False
        for raw in values:
            if raw in ("__$all", "__$and"):
                mode_all = True
            elif raw in ("__$any", "__$or"):
                mode_all = False
            elif raw == "__$not":
                negate = True
            else:
                neg = negate or raw.startswith("-")
                tag = raw[1:] if raw.startswith("-") else raw
                (self.none_of if neg else self.all_of if mode_all else self.any_of).add(tag)
                negate = False

    @property
    def positive(self) -> set[str]:
        """Tags a match must come from: used to narrow candidates through the index."""
        return self.any_of or set(list(self.all_of)[:1])

    def match(self, tags: Iterable[str]) -> bool:
        have = set(tags)
        if self.any_of and not self.any_of & have:
            return False
        return self.all_of <= have and not self.none_of & have


@lru_cache(maxsize=256)
def projection_tree(fields: tuple[str, ...]) -> Tree:
    """``("id", "execution.queue")`` -> ``{"id": None, "execution": {"queue": None}}``."""
    tree: Tree = {"id": None}
    for path in fields:
        node = tree
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part, _MISSING)
            if child is None:
                break  # a parent is already projected whole
            node = node.setdefault(part, {})
        else:
            node[parts[-1]] = None
    return tree


def project(doc: Doc, tree: Tree) -> Doc:
    """Nested projection: dotted names give nested objects, as the server returns them."""
    out: Doc = {}
    for key, sub in tree.items():
        if key not in doc:
            continue
        value = doc[key]
        if sub is None:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = project(value, sub)
    return out


def get_path(doc: Doc, path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def order(items: list[Doc], order_by: Sequence[str]) -> list[Doc]:
    """Stable multi-key sort; a ``-`` prefix means descending; None sorts first ascending."""
    for spec in reversed([s for s in order_by if s]):
        desc = spec.startswith("-")
        field = spec.lstrip("-+")
        items.sort(key=_field_key(field), reverse=desc)
    return items


def _field_key(field: str) -> Callable[[Doc], tuple[int, Any]]:
    return lambda doc: _sort_key(get_path(doc, field))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


#: Rows a ``*.get_all`` answers without paging: the server cuts the rest off silently.
MAX_ROWS = 500


def page(items: list[Doc], body: Doc) -> list[Doc]:
    size = body.get("page_size")
    if size is None:
        return items[:MAX_ROWS]
    start = int(body.get("page") or 0) * int(size)
    return items[start : start + int(size)]


def regex(pattern: Any) -> re.Pattern[str]:
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise errors.invalid_regex(str(pattern)) from exc


def date_filter(field: str, specs: Sequence[str]) -> Callable[[Doc], bool]:
    """``[">2026-11-26 10:42:26.003965", "<..."]`` on an ISO field; compares fixed-width strings."""
    checks: list[tuple[str, str]] = []
    for spec in specs:
        op = next((o for o in (">=", "<=", ">", "<") if spec.startswith(o)), "")
        try:
            checks.append((op or ">=", iso(parse_ts(spec[len(op) :]))))
        except ValueError as exc:
            raise errors.fields_value_error("invalid date filter", **{field: spec}) from exc

    def ok(doc: Doc) -> bool:
        value = doc.get(field)
        if not value:
            return False
        return all(_compare(value, op, ref) for op, ref in checks)

    return ok


def _compare(value: str, op: str, ref: str) -> bool:
    if op == ">":
        return value > ref
    if op == "<":
        return value < ref
    if op == "<=":
        return value <= ref
    return value >= ref


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def task_candidates(state: SimState, body: Doc, tags: TagFilter | None) -> Iterable[str]:
    """Narrow by id, tag index or status index before the per-task filters run."""
    ids = as_list(body.get("id"))
    if ids:
        return [i for i in dict.fromkeys(ids) if i in state.tasks]
    buckets: list[dict[str, None]] = []
    if tags is not None and tags.positive:
        buckets = [state.tag_index.get(t, {}) for t in tags.positive]
    elif body.get("status"):
        buckets = [state.status_index.get(s, {}) for s in as_list(body["status"])]
    else:
        return list(state.tasks)
    if len(buckets) == 1:
        return list(buckets[0])
    merged = {tid for bucket in buckets for tid in bucket}
    return sorted(merged, key=state.task_seq.__getitem__)
