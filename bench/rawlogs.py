"""Log pages read straight from the raw logs with plain compound indexes, instead of from the
log index's buckets (pure: no I/O); and the bytes on disk per log, by what is kept.

A page asks what `LogReader.page` answers (services/ingest/logviews.py), for the same
`LogFilter` and keyset position `(accepted ms, request id)`, exclusive, newest first: one
`find` per path (filter, sort on the acceptance time then `_id`, both descending, limit), the
two paths merged. Each filter has a compound index that starts with its equality fields and
ends with the sort (`INDEXES`), the usual "equality, sort, range" order of MongoDB's advice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.collections import (
    ENQUEUE_LOGS,
    LOG_INDEX,
    ONDEMAND_LOGS,
    VIEW_DAILY,
    VIEW_ENQUEUE,
    VIEW_HOURLY,
    VIEW_ONDEMAND,
    VIEW_USAGE,
    IndexKeys,
)
from schemas.views import RAW_OF, epoch_ms
from services.ingest.logquery import START, LogFilter, Position

#: The raw log's acceptance time, the pages' sort key, per path.
TIME_OF = {"enqueue": "accepted_at", "ondemand": "created_at"}
#: The equality fields of each kind of filter, per path (`target` is a task on enqueue, a
#: machine's endpoint on on-demand). A machine alone (a quarter of the calls here) walks the
#: sort's index: PostgreSQL keeps no statistics of an unindexed field, and with an index of the
#: machine alone it scanned the table for a machine's endpoint (118 ms p50 at 100,000 logs).
_EQUALITIES: dict[str, tuple[tuple[str, ...], ...]] = {
    "enqueue": (("user",), ("status",), ("task_id",), ("user", "status")),
    "ondemand": (("user",), ("status",), ("machine_id", "endpoint"), ("user", "status")),
}


def indexes(path: str) -> list[IndexKeys]:
    """The plain compound indexes of a path's raw logs: the sort alone (the admin's unfiltered
    pages), then each filter's equality fields followed by the sort."""
    sort: IndexKeys = ((TIME_OF[path], -1), ("_id", -1))
    return [sort] + [tuple((f, 1) for f in fields) + sort for fields in _EQUALITIES[path]]


def index_name(keys: IndexKeys) -> str:
    """MongoDB's default name of an index (`user_1_accepted_at_-1__id_-1`)."""
    return "_".join(f"{field}_{order}" for field, order in keys)


def at_ms(ms: int) -> datetime:
    """A position's milliseconds as a UTC time (exact: no float on the way)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


@dataclass(frozen=True)
class Query:
    """One `find`: collection, filter, sort, limit."""

    collection: str
    filter: dict[str, Any]
    sort: tuple[tuple[str, int], ...]
    limit: int


def page_query(path: str, flt: LogFilter, after: Position, limit: int) -> Query:
    """The `find` of one path's part of a page: up to `limit` raw logs older than `after` that
    match `flt`, newest first."""
    at = TIME_OF[path]
    where: dict[str, Any] = {}
    if flt.user is not None:
        where["user"] = flt.user
    if flt.status is not None:
        where["status"] = flt.status
    if flt.target is not None and path == "enqueue":
        where["task_id"] = flt.target
    elif flt.target is not None:
        where["machine_id"], _, where["endpoint"] = flt.target.partition("/")
    if flt.machine is not None:
        where["machine_id"] = flt.machine
    span: dict[str, datetime] = {}
    if flt.since is not None:
        span["$gte"] = flt.since
    if flt.until is not None:
        span["$lte"] = flt.until
    if span:
        where[at] = span
    if after != START:
        before = at_ms(after[0])
        keyset = [{at: {"$lt": before}}, {at: before, "_id": {"$lt": after[1]}}]
        where = {"$and": [where, {"$or": keyset}]} if where else {"$or": keyset}
    return Query(RAW_OF[path], where, ((at, -1), ("_id", -1)), limit)


def _jsonb(value: str | int) -> str:
    """A SQL literal of a JSON value (FerretDB keeps a date as its milliseconds, a number)."""
    return "'" + json.dumps(value).replace("'", "''") + "'::jsonb"


def page_sql(path: str, flt: LogFilter, after: Position, limit: int, table: str) -> str:
    """The SQL a FerretDB that pushed filter, sort and limit down to PostgreSQL would send for
    `page_query` (its documents are a `_jsonb` column, a field `_jsonb->'field'`, a date its
    milliseconds): with `=` rather than 1.24's `@>`, the expression indexes FerretDB makes for
    `indexes(path)` can answer it. `table` is the collection's table (schema `mlbus`)."""
    if not re.fullmatch(r"[a-z0-9_]+", table):
        raise ValueError(f"not one of FerretDB's table names: {table!r}")
    q = page_query(path, flt, START, limit)
    at = TIME_OF[path]
    where = q.filter.get("$and", [q.filter])[0]
    conds = [f"_jsonb->'{k}' = {_jsonb(v)}" for k, v in where.items() if not isinstance(v, dict)]
    for op, sql in (("$gte", ">="), ("$lte", "<=")):
        if op in where.get(at, {}):
            conds.append(f"_jsonb->'{at}' {sql} {_jsonb(epoch_ms(where[at][op]))}")
    if after != START:
        row = f"({_jsonb(after[0])}, {_jsonb(after[1])})"
        conds.append(f"(_jsonb->'{at}', _jsonb->'_id') < {row}")
    clause = f" WHERE {' AND '.join(conds)}" if conds else ""
    # Values quoted by _jsonb, the table's name checked above, the fields ours.
    select = f'SELECT _jsonb FROM mlbus."{table}"'  # noqa: S608
    return f"{select}{clause} ORDER BY _jsonb->'{at}' DESC, _jsonb->'_id' DESC LIMIT {limit}"


def position(path: str, doc: Mapping[str, Any]) -> Position:
    """A raw log's keyset position."""
    return epoch_ms(doc[TIME_OF[path]]), str(doc["_id"])


def merge(
    found: Mapping[str, Sequence[Mapping[str, Any]]], limit: int
) -> tuple[list[Mapping[str, Any]], Position | None]:
    """The page from each path's part (each newest first, at most `limit`): the newest `limit`
    of all, and the position of the next page (None: nothing is older)."""
    tagged = sorted(
        ((position(path, doc), doc) for path, docs in found.items() for doc in docs),
        key=lambda pair: pair[0],
        reverse=True,
    )
    more = len(tagged) > limit or any(len(docs) >= limit for docs in found.values())
    page = tagged[:limit]
    return [doc for _, doc in page], (page[-1][0] if more and page else None)


def same_page(raw: Sequence[str], buckets: Sequence[str], only_raw: set[str]) -> bool:
    """Whether a page read from the raw logs is the bucket index's, but for the logs that only
    the raw logs have (`only_raw`), which push the bucket page's last rows off it."""
    kept = [rid for rid in raw if rid not in only_raw]
    return kept == list(buckets[: len(kept)]) and (len(kept) < len(raw) or len(raw) == len(buckets))


#: The collections a log costs, by role.
RAW = (ENQUEUE_LOGS, ONDEMAND_LOGS)
ROWS = (VIEW_ENQUEUE, VIEW_ONDEMAND)
COUNTERS = (VIEW_HOURLY, VIEW_DAILY, VIEW_USAGE)
#: What is kept, per way of answering the log pages: collections, and whether the plain indexes
#: of the raw logs count.
KEPT: dict[str, tuple[tuple[str, ...], bool]] = {
    "now: bucket index + rows + counters + raw": ((*RAW, *ROWS, *COUNTERS, LOG_INDEX), False),
    "plain indexes, rows + counters + raw": ((*RAW, *ROWS, *COUNTERS), True),
    "plain indexes, counters + raw (pages read raw logs)": ((*RAW, *COUNTERS), True),
}


@dataclass(frozen=True)
class Sizes:
    """One collection's bytes on disk: its documents, and each of its indexes by name."""

    data: int
    indexes: Mapping[str, int]

    def total(self, plain: Iterable[str] = ()) -> int:
        """Documents and indexes, leaving out the indexes named in `plain`."""
        left_out = set(plain)
        return self.data + sum(n for name, n in self.indexes.items() if name not in left_out)


def plain_names() -> set[str]:
    """The names of the plain indexes of both paths."""
    return {index_name(keys) for path in TIME_OF for keys in indexes(path)}


def per_log(sizes: Mapping[str, Sizes], logs: int) -> dict[str, dict[str, float]]:
    """Bytes in all and bytes per log for each way of keeping them (`KEPT`); a collection that
    does not exist counts nothing."""
    if logs <= 0:
        raise ValueError("no logs to divide by")
    out = {}
    plain = plain_names()
    for name, (collections, with_plain) in KEPT.items():
        total = sum(sizes[c].total(() if with_plain else plain) for c in collections if c in sizes)
        out[name] = {"bytes": total, "per_log": round(total / logs, 1)}
    return out


def explained(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What an `explain` of FerretDB says: whether the filter, the sort and the limit were
    pushed down to the backend, its plan's steps (PostgreSQL's `Node Type`, SQLite's
    `detail`), and the indexes they use (none: every row is read)."""
    steps: list[str] = []
    used: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "Node Type":
                    steps.append(str(value))
                elif key == "Index Name":
                    used.append(str(value))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and "detail=" in node:  # SQLite: "id=.. parent=.. detail=.."
            detail = node.split("detail=", 1)[1]
            steps.append(detail)
            if " USING " in detail and "INDEX " in detail:
                used.append(detail.split("INDEX ", 1)[1].split(" ")[0])

    walk(doc.get("queryPlanner", {}))
    return {
        "pushdown": {k: bool(doc.get(f"{k}Pushdown")) for k in ("filter", "sort", "limit")},
        "steps": steps,
        "indexes": used,
    }
