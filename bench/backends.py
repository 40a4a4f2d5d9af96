"""FerretDB on SQLite against FerretDB on PostgreSQL 15, for the log pages: plain compound
indexes on the raw logs (bench/rawlogs.py) against the log index's buckets (what ingest reads
now), and the bytes on disk per log, in one run.

Both backends get the same `--logs` logs over `--days` days (bench.logs's fill, read models
and bucket index included, inserted into both at once), plus a few logs of a rare user; then
the plain indexes. Then, on each backend, every page shape is read both ways, each call timed
(p50/p99 over up to `--repeat` calls, at most `--budget-s` seconds a shape, so a slow one ends
with fewer calls: the table says how many); `explain` says whether the filter, sort and limit
reach the backend and whether an index answers; every page read from the raw logs is checked
against the same page from the buckets. FerretDB 1.24 pushes no sort and no limit down, and on
PostgreSQL pushes equalities down as `@>`, which its btree indexes cannot answer; so each page is
also asked of PostgreSQL directly as a FerretDB with that pushdown would ask it
(bench.rawlogs.page_sql), on the same tables and indexes: what a patched FerretDB could reach.
Last, the bytes on disk per log: each collection
(collStats), each database as a whole (PostgreSQL: `pg_database_size`; SQLite: its files),
and per way of keeping the logs (bench.rawlogs.KEPT).

    .venv/bin/python -m bench.backends [--logs 100000] [--days 3] [--repeat 30] [--budget-s 10]

PostgreSQL's data goes under var/ (its server runs as the user `postgres` when we are root,
and the run's temporary folder is closed to it); it is removed at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.harness import say, summary, write_report
from bench.logs import ENDPOINTS, TASKS, _enqueue, _ondemand, fill
from bench.rawlogs import (
    TIME_OF,
    Query,
    Sizes,
    explained,
    indexes,
    merge,
    page_query,
    page_sql,
    per_log,
    same_page,
)
from mlbus.servers.ferretdb import FerretDBServer
from mlbus.servers.postgres import DATABASE, PostgresServer
from mlbus.servers.process import REPO
from schemas.base import utcnow
from schemas.collections import ENQUEUE_LOGS
from schemas.views import RAW_OF
from services.ingest.logquery import LogFilter, Position
from services.ingest.logviews import LogReader

TARGET_MS, GOAL_BYTES = 100.0, 2048
RARE_USER, RARE_LOGS = "user-rare", 20  # per path
LIMIT = 50
BOTH = ("enqueue", "ondemand")


def shapes(now: Any) -> dict[str, LogFilter]:
    """The pages timed: what the console's log pages ask (the admin sees everyone)."""
    day = now - timedelta(days=2)
    return {
        "all, first page": LogFilter(paths=BOTH),
        "all, 10th page (keyset)": LogFilter(paths=BOTH),
        "enqueue, user": LogFilter(paths=("enqueue",), user="user07"),
        "ondemand, status=failed": LogFilter(paths=("ondemand",), status="failed"),
        "ondemand, endpoint": LogFilter(paths=("ondemand",), target=ENDPOINTS[3]),
        "enqueue, task": LogFilter(paths=("enqueue",), target=TASKS[2]),
        "both, user + status=failed": LogFilter(paths=BOTH, user="user07", status="failed"),
        "both, rare user": LogFilter(paths=BOTH, user=RARE_USER),
        "enqueue, one day 2 days ago": LogFilter(
            paths=("enqueue",), since=day, until=day + timedelta(days=1)
        ),
    }


class Both:
    """A database that inserts into several at once (the fill's only write), timing each."""

    def __init__(self, dbs: Mapping[str, Any]) -> None:
        self.dbs, self.spent = dict(dbs), dict.fromkeys(dbs, 0.0)

    def __getitem__(self, collection: str) -> _BothCollection:
        return _BothCollection(self, collection)


class _BothCollection:
    def __init__(self, both: Both, name: str) -> None:
        self.both, self.name = both, name

    async def insert_many(self, docs: list[dict[str, Any]], ordered: bool = True) -> None:
        async def one(key: str, db: Any) -> None:
            began = time.perf_counter()
            await db[self.name].insert_many(docs, ordered=ordered)
            self.both.spent[key] += time.perf_counter() - began

        await asyncio.gather(*(one(k, db) for k, db in self.both.dbs.items()))


async def add_rare_user(dbs: Mapping[str, Any], days: int) -> set[str]:
    """A few raw logs of a user who is seldom there (a sparse filter's case); their ids. They
    are in the raw logs only, not in the bucket index."""
    rng, now = random.Random(7), utcnow()
    made: dict[str, list[dict[str, Any]]] = {"enqueue": [], "ondemand": []}
    for _ in range(RARE_LOGS):
        at = now - timedelta(seconds=rng.randrange(days * 86400))
        for path, build in (("enqueue", _enqueue), ("ondemand", _ondemand)):
            doc, _ = build(rng, f"{rng.getrandbits(128):032x}", at)
            made[path].append({**doc, "user": RARE_USER})
    for db in dbs.values():
        for path, docs in made.items():
            await db[RAW_OF[path]].insert_many(docs)
    return {str(d["_id"]) for docs in made.values() for d in docs}


async def create_indexes(db: Any) -> float:
    """The plain compound indexes on both paths' raw logs; seconds spent."""
    began = time.perf_counter()
    for path in BOTH:
        for keys in indexes(path):
            await db[RAW_OF[path]].create_index(list(keys))
    return round(time.perf_counter() - began, 1)


async def find(db: Any, q: Query) -> list[dict[str, Any]]:
    """One path's part of a page."""
    cursor = db[q.collection].find(q.filter).sort(list(q.sort)).limit(q.limit)
    found: list[dict[str, Any]] = await cursor.to_list(None)
    return found


async def raw_page(
    db: Any, flt: LogFilter, after: Position, limit: int = LIMIT
) -> tuple[list[str], Position | None]:
    """A page from the raw logs: its request ids, and the next position."""
    parts = await asyncio.gather(*(find(db, page_query(p, flt, after, limit)) for p in flt.paths))
    docs, following = merge(dict(zip(flt.paths, parts, strict=True)), limit)
    return [str(d["_id"]) for d in docs], following


async def bucket_page(
    reader: LogReader, flt: LogFilter, after: Position, limit: int = LIMIT
) -> tuple[list[str], Position | None]:
    """The same page from the log index's buckets (what ingest reads now)."""
    rows, following = await reader.page(flt, after, limit)
    return [str(r["_id"]) for r in rows], following


async def explain(db: Any, q: Query) -> dict[str, Any]:
    """Whether the filter, sort and limit reach the backend, and its plan's nodes."""
    spec = {"find": q.collection, "filter": q.filter, "sort": dict(q.sort), "limit": q.limit}
    return explained(await db.command("explain", spec))


async def bounded(call: Callable[[], Awaitable[Any]], repeat: int, budget_s: float) -> Any:
    """p50/p99 (ms) of up to `repeat` sequential calls after one warm-up, stopping once
    `budget_s` is spent, warm-up included (at least one call). A warm-up that takes half the
    budget or more is the only call (`cold`: a page that slow needs no second look)."""
    began = time.perf_counter()
    await call()
    first = (time.perf_counter() - began) * 1000
    if first >= budget_s * 500:
        return summary([first]) | {"cold": True}
    spent: list[float] = []
    deadline = time.monotonic() + budget_s - first / 1000
    while len(spent) < repeat and (not spent or time.monotonic() < deadline):
        began = time.perf_counter()
        await call()
        spent.append((time.perf_counter() - began) * 1000)
    return summary(spent)


async def starts(
    reader: LogReader, flts: Mapping[str, LogFilter], pages: int = 9
) -> dict[str, Position]:
    """Where each shape's timed page starts: its first page, or for the 10th page the position
    after 9 pages, followed through the buckets (fast on SQLite; the same on both backends)."""
    out = {}
    for name, flt in flts.items():
        after = flt.start()
        for _ in range(pages if "10th page" in name else 0):
            _, following = await bucket_page(reader, flt, after)
            assert following is not None, "fewer than 10 pages: fill more logs"
            after = following
        out[name] = after
    return out


async def one_backend(
    db: Any,
    flts: Mapping[str, LogFilter],
    positions: Mapping[str, Position],
    repeat: int,
    budget_s: float,
    *,
    rare: set[str],
) -> dict[str, Any]:
    """Every shape on one backend, from its position: explain, raw and bucket times, the two
    pages compared (`rare`: the rare user's logs, which the buckets lack)."""
    reader, out = LogReader(db), {}
    some = await db[ENQUEUE_LOGS].find_one({}, {"_id": 1})
    out["baseline: _id lookup"] = {
        "buckets": await bounded(
            lambda: db[ENQUEUE_LOGS].find_one({"_id": some["_id"]}), repeat, budget_s
        ),
        "explain": await explain(db, Query(ENQUEUE_LOGS, {"_id": some["_id"]}, (), 1)),
    }
    for name, flt in flts.items():
        after = positions[name]
        say(f"  {name} ...")
        raw_ids, _ = await raw_page(db, flt, after)
        bucket_ids, _ = await bucket_page(reader, flt, after)
        row: dict[str, Any] = {
            "rows": len(raw_ids),
            "ids": raw_ids,
            "same_page": same_page(raw_ids, bucket_ids, rare) if flt.user != RARE_USER else None,
            "explain": {p: await explain(db, page_query(p, flt, after, LIMIT)) for p in flt.paths},
        }

        def raw(f: LogFilter = flt, a: Position = after) -> Awaitable[Any]:
            return raw_page(db, f, a)

        def buckets(f: LogFilter = flt, a: Position = after) -> Awaitable[Any]:
            return bucket_page(reader, f, a)

        row["raw"] = await bounded(raw, repeat, budget_s)
        row["buckets"] = await bounded(buckets, repeat, budget_s)
        say(
            f"  {name:<30} raw p50 {row['raw']['p50']:8.1f} p99 {row['raw']['p99']:8.1f} "
            f"(n {row['raw']['n']}) | buckets p50 {row['buckets']['p50']:8.1f} "
            f"p99 {row['buckets']['p99']:8.1f} (n {row['buckets']['n']}) ms; "
            f"{row['rows']} rows, same page: {row['same_page']}"
        )
        out[name] = row
    return out


def sql_pages(
    pg: PostgresServer,
    flts: Mapping[str, LogFilter],
    positions: Mapping[str, Position],
    expected: Mapping[str, list[str]],
    repeat: int,
) -> dict[str, Any]:
    """Each page as PostgreSQL answers it from FerretDB's own tables and indexes when asked as a
    FerretDB with filter, sort and limit pushdown would ask (bench.rawlogs.page_sql): server
    time (EXPLAIN ANALYZE's execution time, both paths added), the plan, and the page compared
    with the one read through FerretDB."""
    names = pg.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'mlbus'").splitlines()
    tables = {
        c: t for t in names for c in RAW_OF.values() if re.fullmatch(rf"{c}_[0-9a-f]{{8}}", t)
    }
    out = {}
    for name, flt in flts.items():
        sql = {p: page_sql(p, flt, positions[name], LIMIT, tables[RAW_OF[p]]) for p in flt.paths}
        found = {p: [json.loads(line) for line in pg.sql(q).splitlines()] for p, q in sql.items()}
        ids = [str(d["_id"]) for d in _newest(found)]
        times, plans = [], {}
        for _ in range(repeat):
            spent = 0.0
            for path, q in sql.items():
                plan = json.loads(pg.sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {q}"))[0]
                spent += float(plan["Execution Time"])
                plans[path] = explained({"queryPlanner": plan["Plan"]})
            times.append(spent)
        out[name] = summary(times) | {"explain": plans, "same_page": ids == expected[name]}
        say(
            f"  {name:<30} p50 {out[name]['p50']:6.2f} p99 {out[name]['p99']:6.2f} ms; "
            f"same page: {out[name]['same_page']}; "
            + "; ".join(f"{p}: {', '.join(e['indexes']) or 'no index'}" for p, e in plans.items())
        )
    return out


def _newest(found: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Both paths' rows (dates as FerretDB keeps them: milliseconds), newest first, a page."""
    docs = [(d[TIME_OF[p]], str(d["_id"]), d) for p, rows in found.items() for d in rows]
    return [d for _, _, d in sorted(docs, key=lambda t: (t[0], t[1]), reverse=True)][:LIMIT]


def pg_tables(pg: PostgresServer) -> dict[str, int]:
    """Each FerretDB table's bytes with its TOAST (`pg_table_size`; collStats leaves TOAST out,
    where PostgreSQL keeps every value over ~2 KB, compressed: most of a bucket's)."""
    rows = pg.sql(
        "SELECT tablename, pg_table_size(format('%I.%I', schemaname, tablename)::regclass) "
        "FROM pg_tables WHERE schemaname = 'mlbus'"
    )
    return {name: int(size) for name, size in (r.split("|") for r in rows.splitlines())}


async def sizes(
    db: Any, whole: int, logs: int, tables: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Bytes on disk: each collection (collStats: documents, each index; on PostgreSQL the
    documents' bytes are its table's, `tables`), the whole database, and per log for each way
    of keeping them."""
    found = {}
    for name in sorted(await db.list_collection_names()):
        stats = await db.command("collStats", name)
        data = int(stats["storageSize"])
        if tables is not None:
            (data,) = (n for t, n in tables.items() if re.fullmatch(rf"{name}_[0-9a-f]{{8}}", t))
        found[name] = Sizes(data, {k: int(v) for k, v in stats["indexSizes"].items()})
    return {
        "whole_database": {"bytes": whole, "per_log": round(whole / logs, 1)},
        "collections": {k: {"data": v.data, "indexes": dict(v.indexes)} for k, v in found.items()},
        "kept": per_log(found, logs),
    }


def sqlite_bytes(home: Path) -> int:
    """FerretDB's SQLite files of the `mlbus` database (write-ahead log included)."""
    return sum(f.stat().st_size for f in (home / "data").glob("mlbus.sqlite*"))


def _ms(s: Mapping[str, float]) -> str:
    return f"{s['p50']:7.1f} /{s['p99']:8.1f}"


def tables(report: Mapping[str, Any]) -> None:
    """The compact tables: page times, what explain says, bytes per log."""
    names = list(report["pages"])
    say(f"\nlog pages of {LIMIT}, ms p50 / p99 ({report['logs']:,} logs)")
    say(f"{'page':<31}" + "".join(f" {b + ' raw':>17} {b + ' buckets':>17}" for b in names))
    for shape in report["pages"][names[0]]:
        line = f"{shape:<31}"
        for backend in names:
            row = report["pages"][backend][shape]
            line += f" {_ms(row['raw']) if 'raw' in row else '':>17} {_ms(row['buckets']):>17}"
        say(line)
    say("\nexplain of the raw reads (filter/sort/limit pushed down; plan steps; index used)")
    for backend in names:
        for shape, row in report["pages"][backend].items():
            for path, e in row["explain"].items() if "raw" in row else [("", row["explain"])]:
                flags = "/".join("yes" if v else "no" for v in e["pushdown"].values())
                steps = ", ".join(dict.fromkeys(e["steps"])) or "-"
                used = ", ".join(e["indexes"]) or "none"
                say(f"  {backend:<10} {shape:<31} {path:<8} {flags:<10} {steps}; index: {used}")
    say("\npostgresql with pushdown (SQL on FerretDB's tables and indexes), ms p50 / p99")
    for shape, row in report["sql"].items():
        used = "; ".join(", ".join(e["indexes"]) or "no index" for e in row["explain"].values())
        say(f"  {shape:<31} {_ms(row):>17}  {used}")
    say(f"\nbytes on disk per log (goal <= {GOAL_BYTES} B)")
    for backend, s in report["sizes"].items():
        say(f"  {backend}: whole database {s['whole_database']['per_log']:,.0f} B/log")
        for kept, k in s["kept"].items():
            ok = "yes" if k["per_log"] <= GOAL_BYTES else "NO"
            say(f"    {kept:<55} {k['per_log']:>9,.0f} B/log  {ok}")


def _home() -> Path:
    """The run's folder, under var/: PostgreSQL runs as `postgres` when we are root, and the
    temporary folders of others are closed to it."""
    (REPO / "var").mkdir(exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="bench-backends-", dir=REPO / "var"))
    home.chmod(0o755)
    return home


async def run(args: argparse.Namespace) -> None:
    home = _home()
    pg = PostgresServer(home / "postgres")
    servers = {"sqlite": FerretDBServer(home / "ferretdb-sqlite")}
    clients: dict[str, AsyncMongoClient[dict[str, Any]]] = {}
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    began = time.perf_counter()
    try:
        say(f"starting PostgreSQL 15 and FerretDB on SQLite and on PostgreSQL ({home})")
        await asyncio.to_thread(pg.start)
        servers["postgresql"] = FerretDBServer(home / "ferretdb-postgresql", postgresql_url=pg.url)
        for server in servers.values():
            await asyncio.to_thread(server.start)
        clients = {k: AsyncMongoClient(s.uri, tz_aware=True) for k, s in servers.items()}
        dbs = {k: c["mlbus"] for k, c in clients.items()}
        say(f"filling {args.count:,} logs over {args.days} days into both, with read models")
        both = Both(dbs)
        report["fill"] = await fill(both, args.count, args.days)
        report["fill"]["insert_s"] = {k: round(v, 1) for k, v in both.spent.items()}
        rare = await add_rare_user(dbs, args.days)
        report["logs"] = logs = report["fill"]["logs"] + 2 * RARE_LOGS
        say(f"filled in {report['fill']['fill_s']} s; creating the plain indexes")
        report["index_s"] = {k: await create_indexes(db) for k, db in dbs.items()}
        await asyncio.to_thread(pg.sql, "ANALYZE")
        flts = shapes(utcnow())
        positions = await starts(LogReader(dbs["sqlite"]), flts)
        report["pages"] = {}
        for backend, db in dbs.items():
            say(f"\n{backend}: each page from the raw logs and from the buckets")
            report["pages"][backend] = await one_backend(
                db, flts, positions, args.repeat, args.budget_s, rare=rare
            )
        say("\npostgresql: each page as SQL with filter, sort and limit pushed down")
        expected = {k: v["ids"] for k, v in report["pages"]["sqlite"].items() if "ids" in v}
        report["sql"] = await asyncio.to_thread(
            sql_pages, pg, flts, positions, expected, min(args.repeat, 20)
        )
        whole = {
            "sqlite": sqlite_bytes(servers["sqlite"].home),
            "postgresql": int(
                await asyncio.to_thread(pg.sql, f"SELECT pg_database_size('{DATABASE}')")
            ),
        }
        in_pg = {"sqlite": None, "postgresql": await asyncio.to_thread(pg_tables, pg)}
        report["sizes"] = {k: await sizes(db, whole[k], logs, in_pg[k]) for k, db in dbs.items()}
        report["run_s"] = round(time.perf_counter() - began, 1)
        tables(report)
    finally:
        for client in clients.values():
            await client.close()
        for server in servers.values():
            await asyncio.to_thread(server.stop)
        await asyncio.to_thread(pg.stop)
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    say(f"report: {write_report('backends', report)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logs", "--count", dest="count", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=30, help="calls per page shape, at most")
    parser.add_argument("--budget-s", type=float, default=10.0, help="seconds per shape, at most")
    parser.add_argument("--keep", action="store_true", help="keep the databases under var/")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
