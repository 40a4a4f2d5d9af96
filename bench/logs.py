"""Log queries and the dashboard with 1,000,000 log documents, against "under 100 ms".

Fills a fresh FerretDB with synthetic enqueue and on-demand logs spread over the last `--days`
days (insert_many in large batches), and their read models, built by the logger's own fold code
(`services.logger.fold`), hour by hour. Then measures, p50/p95/p99 over repeated calls:

- through ingest's HTTP API: `/v1/admin/logs` (several filters, first and deep pages, CSV) and
  `/v1/admin/dashboard`; baseline: `GET /v1/requests/{id}` (one `_id` lookup through the API);
- directly in MongoDB: the same reads through `services.ingest.logviews`; baseline: a plain
  `_id` lookup, and the naive way (a filtered, sorted find and an aggregation over the raw logs).

    .venv/bin/python -m bench.logs [--logs 1000000] [--days 30] [--repeat 100]

`--logs 100000 --days 3` keeps the per-hour density of the default (what a page costs depends
on it, not on the total), for quicker runs while designing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from bench.harness import Stack, say, summary, write_report
from schemas.base import utcnow
from schemas.collections import ENQUEUE_LOGS, LOG_INDEX, ONDEMAND_LOGS
from schemas.views import SLOT_MINUTES, VIEW_OF, slot_key
from services.ingest.dashboard import summary as dashboard_summary
from services.ingest.logquery import LogFilter
from services.ingest.logviews import LogReader
from services.logger.fold import Fact, Update, Writes, effects

USERS = [f"user{i:02d}" for i in range(50)]
TASKS = [f"{i:032x}" for i in range(1, 21)]
MACHINES = [f"{i:032x}" for i in range(101, 105)]
ENDPOINTS = [f"{m}/ep{j}" for m in MACHINES for j in range(5)]
ENQUEUE_END = [("completed", 80), ("failed", 5), ("enqueue_failed", 2), ("stopped", 5)]
ENQUEUE_END += [("running", 3), ("queued", 5)]
ONDEMAND_END = [("ok", 93), ("model_error", 3), ("failed", 2), ("timeout", 2)]
TARGET_MS = 100.0
#: Index dimensions whose bucket slots span several hours (the fill builds an hour at a time).
LONG_SLOTS = [d for d, minutes in SLOT_MINUTES.items() if minutes > 60]


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([s for s, _ in weighted], [w for _, w in weighted])[0]


def _enqueue(rng: random.Random, rid: str, at: datetime) -> tuple[dict[str, Any], list[Fact]]:
    end, user, task = _pick(rng, ENQUEUE_END), rng.choice(USERS), rng.choice(TASKS)
    total = rng.lognormvariate(3.7, 0.4)
    queued = at + timedelta(milliseconds=total)
    if end == "enqueue_failed":
        steps = ["accepted", "failed"]
    else:
        lifecycle = {"queued": [], "running": ["running"]}.get(end, ["running", end])
        steps = ["accepted", "cloned", "queued", *lifecycle]
    status = steps[-1]
    doc = {
        "_id": rid,
        "user": user,
        "task_id": task,
        "template_task_id": f"template-{task[:8]}",
        "queue": "gpu-a100",
        "accepted_at": at,
        "status": status,
        "updated_at": queued,
        "history": [{"status": s, "at": queued} for s in steps],
        "latency_ms": {"total": round(total, 2)} if end != "enqueue_failed" else {},
    }
    if end == "enqueue_failed":
        doc["error"] = "The training queue does not exist on the cluster."
    else:
        doc["clone_id"] = f"clone-{rid[:24]}"
    first = "failed" if end == "enqueue_failed" else "queued"
    facts = [Fact("enqueue", rid, first, queued, counted=True, error=first == "failed")]
    facts += [Fact("enqueue", rid, s, queued) for s in steps[3:]]
    return doc, facts


def _ondemand(rng: random.Random, rid: str, at: datetime) -> tuple[dict[str, Any], list[Fact]]:
    status, user, target = _pick(rng, ONDEMAND_END), rng.choice(USERS), rng.choice(ENDPOINTS)
    machine, endpoint = target.split("/")
    total = rng.lognormvariate(2.3, 0.6)
    done = at + timedelta(milliseconds=total)
    doc = {
        "_id": rid,
        "user": user,
        "machine_id": machine,
        "endpoint": endpoint,
        "version": None,
        "serving_task_id": f"serving-{machine[:8]}",
        "replica_url": "http://10.0.0.5:8080/serve",
        "status": status,
        "http_status": {"ok": 200, "model_error": 422, "failed": 502}.get(status, 504),
        "error_code": None if status == "ok" else "model_failed",
        "error": None if status == "ok" else "The model failed.",
        "latency_ms": {"bus": 1.2, "model": round(total * 0.7, 3), "total": round(total, 3)},
        "created_at": at,
        "finished_at": done,
    }
    fact = Fact("ondemand", rid, status, done, counted=True, error=status != "ok")
    return doc, [fact]


def hours_of(count: int, days: int, end: datetime) -> Iterator[tuple[datetime, int]]:
    """(hour start, requests in it), oldest first, `count` in all."""
    hours = days * 24
    start = end.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    for i in range(hours):
        yield start + timedelta(hours=i), count // hours + (1 if i < count % hours else 0)


def build_hour(
    rng: random.Random, hour: datetime, size: int, now: datetime
) -> tuple[dict[str, list[dict[str, Any]]], Writes]:
    """One hour's raw logs, and every write their facts make."""
    raw: dict[str, list[dict[str, Any]]] = {"enqueue": [], "ondemand": []}
    writes = Writes()
    for i in range(size):
        at = min(hour + timedelta(milliseconds=rng.randrange(3_600_000)), now)
        rid = f"{rng.getrandbits(128):032x}"
        path = "enqueue" if i % 2 == 0 else "ondemand"
        doc, facts = (_enqueue if path == "enqueue" else _ondemand)(rng, rid, at)
        raw[path].append(doc)
        for fact in facts:
            effects(fact, doc, writes)
    return raw, writes


async def fill(db: Any, count: int, days: int) -> dict[str, Any]:
    """Raw logs, views and index hour by hour (a bucket of a longer slot once its last hour is
    built); counters and directories at the end. The next hour is built in a thread while this
    one is inserted (Python and FerretDB overlap)."""
    # Whole hours up to the current one: clamping the current hour's logs to "now" would pile
    # hundreds of them on one millisecond, which real traffic does not do.
    rng, now = random.Random(42), utcnow().replace(minute=0, second=0, microsecond=0)
    totals, began, made = Writes(), time.perf_counter(), 0
    plan = list(hours_of(count, days, now - timedelta(hours=1)))
    following = asyncio.create_task(asyncio.to_thread(build_hour, rng, *plan[0], now))
    pending = Writes()  # buckets of slots longer than an hour, until their last hour is built
    for n, (hour, size) in enumerate(plan):
        raw, writes = await following
        if n + 1 < len(plan):
            following = asyncio.create_task(asyncio.to_thread(build_hour, rng, *plan[n + 1], now))
        await _insert(db, ENQUEUE_LOGS, raw["enqueue"])
        await _insert(db, ONDEMAND_LOGS, raw["ondemand"])
        for coll in VIEW_OF.values():
            await _insert(db, coll, [d for (c, _), d in writes.replaces.items() if c == coll])
        buckets = []
        for (coll, key), update in writes.updates.items():
            if coll != LOG_INDEX or key.startswith("dir|"):
                _merge(totals, coll, key, update)
            elif not update.upsert:  # only removals, of entries that were never written here
                continue
            elif key.split("|", 2)[1] in LONG_SLOTS:  # a bucket that later hours add to
                _merge(pending, coll, key, update)
            else:  # a bucket: this hour's only
                buckets.append(update.created(key))
        if all(slot_key(d, hour) != slot_key(d, hour + timedelta(hours=1)) for d in LONG_SLOTS):
            buckets += [u.created(k) for (_, k), u in pending.updates.items()]
            pending = Writes()
        await _insert(db, LOG_INDEX, buckets)
        made += size
        if n % 24 == 23:
            rate = made / (time.perf_counter() - began)
            say(f"  filled {made:>9,} logs ({rate:,.0f}/s), day {n // 24 + 1} of {days}")
    await _insert(db, LOG_INDEX, [u.created(k) for (_, k), u in pending.updates.items()])
    for coll in {c for c, _ in totals.updates}:
        docs = [u.created(k) for (c, k), u in totals.updates.items() if c == coll]
        await _insert(db, coll, docs)
    return {"logs": made, "fill_s": round(time.perf_counter() - began, 1)}


def _merge(into: Writes, coll: str, key: str, update: Update) -> None:
    u = into.update(coll, key)
    u.sets.update(update.sets)
    for name, n in update.incs.items():
        u.incs[name] = u.incs.get(name, 0) + n


async def _insert(db: Any, coll: str, docs: list[dict[str, Any]]) -> None:
    for i in range(0, len(docs), 5000):
        await db[coll].insert_many(docs[i : i + 5000], ordered=False)


async def timed(repeat: int, call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    """p50/p95/p99 (ms) of `repeat` sequential calls, after one warm-up."""
    await call()
    spent = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        spent.append((time.perf_counter() - started) * 1000)
    return summary(spent)


def _filters(now: datetime) -> dict[str, LogFilter]:
    both = ("enqueue", "ondemand")
    day = now - timedelta(days=10)
    return {
        "all, first page": LogFilter(paths=both),
        "enqueue, user": LogFilter(paths=("enqueue",), user="user07"),
        "ondemand, status=failed": LogFilter(paths=("ondemand",), status="failed"),
        "ondemand, endpoint": LogFilter(paths=("ondemand",), target=ENDPOINTS[3]),
        "both, user + status=failed": LogFilter(paths=both, user="user07", status="failed"),
        "enqueue, one day 10 days ago": LogFilter(
            paths=("enqueue",), since=day, until=day + timedelta(days=1)
        ),
    }


async def direct(db: Any, repeat: int) -> dict[str, Any]:
    """The reads through the same code ingest runs, straight against MongoDB."""
    reader, now, out = LogReader(db), utcnow(), {}
    some = await db[ENQUEUE_LOGS].find_one({}, {"_id": 1})
    out["baseline: _id lookup"] = await timed(
        repeat, lambda: db[ENQUEUE_LOGS].find_one({"_id": some["_id"]})
    )
    for name, one in _filters(now).items():

        def page(f: LogFilter = one) -> Awaitable[Any]:
            return reader.page(f, f.start(), 50)

        out[f"logs: {name}"] = await timed(repeat, page)
    flt = LogFilter(paths=("enqueue", "ondemand"))

    async def deep() -> None:  # the 10th page: 9 pages followed
        position = flt.start()
        for _ in range(10):
            _, following = await reader.page(flt, position, 50)
            assert following is not None
            position = following

    out["logs: 10 pages deep (10 calls)"] = await timed(max(5, repeat // 10), deep)
    out["dashboard"] = await timed(
        repeat, lambda: dashboard_summary(db, reader, hours=24, days=7, top_n=10)
    )
    return out


async def naive(db: Any) -> dict[str, Any]:
    """The same questions asked of the raw logs, the way one would without read models."""
    since = utcnow() - timedelta(hours=24)
    group: list[dict[str, Any]] = [
        {"$match": {"created_at": {"$gte": since}}},
        {"$group": {"_id": "$status", "n": {"$sum": 1}}},
    ]
    return {
        "naive: find user, newest 50": await timed(
            2,
            lambda: (
                db[ONDEMAND_LOGS]
                .find({"user": "user07"})
                .sort("created_at", -1)
                .limit(50)
                .to_list(None)
            ),
        ),
        "naive: aggregate last 24 h": await timed(2, lambda: _aggregate(db[ONDEMAND_LOGS], group)),
    }


async def _aggregate(collection: Any, pipeline: list[dict[str, Any]]) -> list[Any]:
    cursor = await collection.aggregate(pipeline)
    found: list[Any] = await cursor.to_list(None)
    return found


async def over_http(stack: Stack, db: Any, repeat: int) -> dict[str, Any]:
    """The same reads through ingest's HTTP API, with an admin token."""
    admin = {"Authorization": f"Bearer {stack.token('admin', ['RootAdmin'])}"}
    some = await db[ENQUEUE_LOGS].find_one({"user": "user07"}, {"_id": 1})
    user_token = {"Authorization": f"Bearer {stack.token('user07', ['Manager'])}"}
    queries = {
        "logs: all, first page": ("/v1/admin/logs", {}),
        "logs: enqueue, user": ("/v1/admin/logs/enqueue", {"user": "user07"}),
        "logs: ondemand, status=failed": ("/v1/admin/logs/ondemand", {"status": "failed"}),
        "logs: ondemand, endpoint": (
            "/v1/admin/logs/ondemand",
            {"machine_id": MACHINES[0], "endpoint": "ep3"},
        ),
        "logs: both, user + status=failed": (
            "/v1/admin/logs",
            {"user": "user07", "status": "failed"},
        ),
        "dashboard": ("/v1/admin/dashboard", {}),
    }
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=stack.ingest_url, timeout=30) as client:

        async def get(url: str, params: dict[str, str], headers: dict[str, str]) -> None:
            response = await client.get(url, params=params, headers=headers)
            assert response.status_code == 200, response.text

        out["baseline: GET /v1/requests/{id}"] = await timed(
            repeat, lambda: get(f"/v1/requests/{some['_id']}", {}, user_token)
        )
        for name, (url, params) in queries.items():

            def call(u: str = url, p: dict[str, str] = params) -> Awaitable[None]:
                return get(u, p, admin)

            out[name] = await timed(repeat, call)
        out["logs: /v1/logs (own)"] = await timed(repeat, lambda: get("/v1/logs", {}, user_token))
        csv_params = {"limit": "200"}
        out["csv: 1,000 rows streamed"] = await timed(
            5, lambda: _csv(client, admin, csv_params, 1000)
        )
    return out


async def _csv(client: httpx.AsyncClient, headers: dict[str, str], params: Any, rows: int) -> None:
    got = 0
    async with client.stream("GET", "/v1/admin/logs.csv", params=params, headers=headers) as r:
        async for _ in r.aiter_lines():
            got += 1
            if got > rows:
                break


def table(title: str, rows: dict[str, dict[str, float]], baseline: str) -> None:
    base = rows[baseline]["p50"]
    say(f"\n{title}")
    say(f"{'query':<40} {'p50':>9} {'p95':>9} {'p99':>9}  {'x base p50':>10}  < 100 ms (p99)")
    for name, s in rows.items():
        ok = "yes" if s["p99"] < TARGET_MS else "NO"
        say(
            f"{name:<40} {s['p50']:>8.1f}  {s['p95']:>8.1f}  {s['p99']:>8.1f}  "
            f"{s['p50'] / base:>9.1f}x  {ok}"
        )


async def run(args: argparse.Namespace) -> None:
    stack = Stack()
    try:
        await asyncio.to_thread(stack.start, ["ingest"])
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.mongo.uri, tz_aware=True)
        db = client["mlbus"]
        say(f"filling {args.count:,} logs over {args.days} days, with their read models")
        filled = await fill(db, args.count, args.days)
        say(f"filled in {filled['fill_s']} s")
        mongo = await direct(db, args.repeat)
        table("directly in MongoDB (ms)", mongo, "baseline: _id lookup")
        http = await over_http(stack, db, args.repeat)
        table("through ingest's HTTP API (ms)", http, "baseline: GET /v1/requests/{id}")
        slow = await naive(db)
        say(
            "\nnaive, over the raw logs (ms): "
            + ", ".join(f"{k}: p50 {v['p50']:.0f}" for k, v in slow.items())
        )
        report = {"fill": filled, "mongo": mongo, "http": http, "naive": slow, "args": vars(args)}
        say(f"report: {write_report('logs', report)}")
        await client.close()
    finally:
        await asyncio.to_thread(stack.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logs", "--count", dest="count", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=100)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
