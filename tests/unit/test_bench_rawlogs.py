"""bench.rawlogs: the log pages asked of the raw logs (query shapes, keyset paging, the merge of
both paths), what `explain` says, and the bytes-per-log arithmetic. Pure: the queries are run
here by a small evaluator of the operators they use."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bench.backends import shapes
from bench.rawlogs import (
    KEPT,
    TIME_OF,
    Sizes,
    at_ms,
    explained,
    index_name,
    indexes,
    merge,
    page_query,
    page_sql,
    per_log,
    same_page,
)
from schemas.collections import ENQUEUE_LOGS, LOG_INDEX, ONDEMAND_LOGS, VIEW_DAILY, VIEW_ENQUEUE
from schemas.views import RAW_OF, epoch_ms
from services.ingest.logquery import START, LogFilter

pytestmark = pytest.mark.unit
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def matches(doc: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """MongoDB's meaning of the operators page_query uses."""
    for key, want in where.items():
        if key == "$and":
            if not all(matches(doc, w) for w in want):
                return False
        elif key == "$or":
            if not any(matches(doc, w) for w in want):
                return False
        elif isinstance(want, dict):
            ops = {"$lt": lambda a, b: a < b, "$gte": lambda a, b: a >= b}
            ops["$lte"] = lambda a, b: a <= b
            if not all(ops[op](doc[key], value) for op, value in want.items()):
                return False
        elif doc.get(key) != want:
            return False
    return True


def run(docs: Mapping[str, list[dict[str, Any]]], path: str, q: Any) -> list[dict[str, Any]]:
    assert q.collection == RAW_OF[path]
    found = [d for d in docs[path] if matches(d, q.filter)]
    for field, order in reversed(q.sort):  # stable sorts, the last key first

        def key(d: Mapping[str, Any], f: str = field) -> Any:
            return d[f]

        found.sort(key=key, reverse=order < 0)
    return found[: q.limit]


def logs(n: int, seed: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Raw logs of both paths, many sharing a millisecond (ties broken by `_id`)."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {"enqueue": [], "ondemand": []}
    for _ in range(n):
        path = rng.choice(["enqueue", "ondemand"])
        doc: dict[str, Any] = {
            "_id": f"{rng.getrandbits(64):016x}",
            TIME_OF[path]: T0 + timedelta(milliseconds=rng.randrange(n // 3)),
            "user": rng.choice(["u1", "u2", "u3"]),
            "status": rng.choice(["ok", "failed"]),
        }
        if path == "enqueue":
            doc["task_id"] = rng.choice(["t1", "t2"])
        else:
            doc["machine_id"], doc["endpoint"] = rng.choice(["m1", "m2"]), rng.choice(["a", "b"])
        out[path].append(doc)
    return out


def every_page(
    docs: Mapping[str, list[dict[str, Any]]], flt: LogFilter, limit: int
) -> list[list[str]]:
    pages, after = [], flt.start()
    while True:
        found = {p: run(docs, p, page_query(p, flt, after, limit)) for p in flt.paths}
        page, following = merge(found, limit)
        pages.append([str(d["_id"]) for d in page])
        if following is None:
            return pages
        assert len(pages) < 1000
        after = following


FILTERS = [
    LogFilter(paths=("enqueue", "ondemand")),
    LogFilter(paths=("enqueue",), user="u2"),
    LogFilter(paths=("ondemand",), status="failed", target="m1/a"),
    LogFilter(paths=("ondemand",), machine="m2"),
    LogFilter(paths=("enqueue",), target="t1"),
    LogFilter(paths=("enqueue", "ondemand"), user="u1", status="ok"),
    LogFilter(
        paths=("enqueue", "ondemand"),
        since=T0 + timedelta(milliseconds=20),
        until=T0 + timedelta(milliseconds=70),
    ),
]


@pytest.mark.parametrize("flt", FILTERS)
@pytest.mark.parametrize("limit", [1, 7, 50])
def test_keyset_pages_list_every_match_once_newest_first(flt: LogFilter, limit: int) -> None:
    docs = logs(300)
    pages = every_page(docs, flt, limit)
    expected = sorted(
        (d for p in flt.paths for d in docs[p] if _accepts(flt, p, d)),
        key=lambda d: (
            epoch_ms(d[TIME_OF["enqueue" if "accepted_at" in d else "ondemand"]]),
            d["_id"],
        ),
        reverse=True,
    )
    assert [rid for page in pages for rid in page] == [d["_id"] for d in expected]
    assert all(len(page) == limit for page in pages[:-1])


def _accepts(flt: LogFilter, path: str, doc: Mapping[str, Any]) -> bool:
    target = doc.get("task_id") or f"{doc.get('machine_id')}/{doc.get('endpoint')}"
    at = epoch_ms(doc[TIME_OF[path]])
    return flt.accepts([at, doc["user"], target, doc["status"]])


def test_first_page_has_no_keyset_and_until_bounds_the_time() -> None:
    q = page_query("enqueue", LogFilter(paths=("enqueue",), user="u1"), START, 50)
    assert q.filter == {"user": "u1"}
    assert q.sort == (("accepted_at", -1), ("_id", -1))
    assert (q.collection, q.limit) == (ENQUEUE_LOGS, 50)
    until = T0 + timedelta(hours=1)
    flt = LogFilter(paths=("ondemand",), until=until)
    q = page_query("ondemand", flt, flt.start(), 50)
    assert q.collection == ONDEMAND_LOGS
    assert q.filter["$and"][0] == {"created_at": {"$lte": until}}


def test_a_position_converts_to_the_exact_millisecond() -> None:
    for ms in (0, 1, 1_764_547_200_123, 2**41 + 7):
        assert epoch_ms(at_ms(ms)) == ms


def _fields(path: str, flt: LogFilter) -> set[str]:
    where = page_query(path, flt, START, 50).filter
    where = where.get("$and", [where])[0]
    return {k for k, v in where.items() if not isinstance(v, dict)}


def test_every_page_timed_has_a_compound_index_of_its_fields_then_the_sort() -> None:
    for path in TIME_OF:
        made = indexes(path)
        assert all(keys[-2:] == ((TIME_OF[path], -1), ("_id", -1)) for keys in made)
        leading = [{f for f, _ in keys[:-2]} for keys in made]
        assert set() in leading  # the unfiltered pages, and dense filters (a machine alone)
        for flt in shapes(T0).values():
            if path in flt.paths:
                assert _fields(path, flt) in leading, (path, flt)
    assert index_name(indexes("enqueue")[1]) == "user_1_accepted_at_-1__id_-1"


def test_merge_says_there_is_more_while_a_path_filled_its_part() -> None:
    def doc(ms: int) -> dict[str, Any]:
        return {"_id": f"r{ms}", "created_at": at_ms(ms)}

    page, following = merge({"ondemand": [doc(9), doc(5)]}, 2)
    assert [d["_id"] for d in page] == ["r9", "r5"]
    assert following == (5, "r5")  # this path may have more
    page, following = merge({"ondemand": [doc(9)], "enqueue": []}, 2)
    assert following is None


def test_bytes_per_log_by_what_is_kept() -> None:
    plain = index_name(indexes("enqueue")[1])
    sizes = {
        ENQUEUE_LOGS: Sizes(1000, {"_id_": 100, plain: 300}),
        VIEW_ENQUEUE: Sizes(500, {"_id_": 50}),
        VIEW_DAILY: Sizes(40, {"_id_": 10}),
        LOG_INDEX: Sizes(9000, {"_id_": 1000}),
    }
    got = per_log(sizes, 10)
    now, with_rows, raw_only = (got[k] for k in KEPT)
    assert now == {"bytes": 1100 + 550 + 50 + 10000, "per_log": 1170.0}  # no plain index
    assert with_rows == {"bytes": 1400 + 550 + 50, "per_log": 200.0}  # no bucket index
    assert raw_only == {"bytes": 1400 + 50, "per_log": 145.0}
    with pytest.raises(ValueError, match="no logs"):
        per_log(sizes, 0)


def test_explain_of_postgresql_and_sqlite() -> None:
    pg = {
        "queryPlanner": {
            "Plan": {
                "Node Type": "Limit",
                "Plans": [{"Node Type": "Index Scan", "Index Name": "t_user_1"}],
            }
        },
        "filterPushdown": True,
        "sortPushdown": False,
    }
    assert explained(pg) == {
        "pushdown": {"filter": True, "sort": False, "limit": False},
        "steps": ["Limit", "Index Scan"],
        "indexes": ["t_user_1"],
    }
    sqlite = {
        "queryPlanner": {
            "Plan": [
                "id=2 parent=0 notused=0 detail=SEARCH t USING INDEX t__id_ (<expr>=?)",
                "id=3 parent=0 notused=0 detail=SCAN u",
            ]
        },
        "limitPushdown": True,
    }
    e = explained(sqlite)
    assert e["steps"] == ["SEARCH t USING INDEX t__id_ (<expr>=?)", "SCAN u"]
    assert e["indexes"] == ["t__id_"]
    assert e["pushdown"]["limit"]


def test_sql_of_a_page_asks_with_equalities_keyset_sort_and_limit() -> None:
    flt = LogFilter(paths=("enqueue",), user="o'neil", status="failed", since=T0)
    sql = page_sql("enqueue", flt, (1_764_547_200_123, "ab"), 50, "enqueue_logs_1d09938d")
    assert epoch_ms(T0) == 1_796_083_200_000
    assert sql == (
        "SELECT _jsonb FROM mlbus.\"enqueue_logs_1d09938d\" WHERE _jsonb->'user' = "
        "'\"o''neil\"'::jsonb AND _jsonb->'status' = '\"failed\"'::jsonb AND "
        "_jsonb->'accepted_at' >= '1796083200000'::jsonb AND "
        "(_jsonb->'accepted_at', _jsonb->'_id') < ('1764547200123'::jsonb, '\"ab\"'::jsonb) "
        "ORDER BY _jsonb->'accepted_at' DESC, _jsonb->'_id' DESC LIMIT 50"
    )
    first = page_sql("ondemand", LogFilter(paths=("ondemand",)), START, 25, "t")
    assert first.endswith("\"t\" ORDER BY _jsonb->'created_at' DESC, _jsonb->'_id' DESC LIMIT 25")
    with pytest.raises(ValueError, match="table"):
        page_sql("ondemand", LogFilter(paths=("ondemand",)), START, 25, 't"; DROP TABLE x; --')


def test_a_raw_page_is_the_buckets_but_for_logs_only_the_raw_logs_have() -> None:
    assert same_page(["a", "b", "c"], ["a", "b", "c"], set())
    assert same_page(["a", "x", "b"], ["a", "b", "c"], {"x"})  # x pushed c off the raw page
    assert same_page(["x", "a"], ["a"], {"x"})  # the last page
    assert not same_page(["a", "c", "b"], ["a", "b", "c"], set())  # out of order
    assert not same_page(["a", "b"], ["a", "b", "c"], set())  # a row missing
    assert not same_page(["a", "x", "c"], ["a", "b", "c"], {"x"})  # b missing
