"""The admin dashboard's summary: what is registered and online, and the requests per hour and
per day of both paths, with success rate, latency percentiles and the top users, tasks and
endpoints.

Everything comes from small collections and from `view_requests_daily` (one document per path
and day, with its hours inside), read by `_id`: a few lookups, whatever the number of logs.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pymongo.asynchronous.database import AsyncDatabase

from runtime.mongo import Doc, store_errors
from schemas.admin import DashboardSummary, PathActivity, Period, Ranked
from schemas.base import utcnow
from schemas.views import day_key, hour_key, merge_counts, percentile, unfield
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import admin_principal
from services.ingest.logs import Reader
from services.ingest.logviews import LogReader
from services.ingest.store import ENDPOINTS, MACHINES, TASKS, StoreUnavailable

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Admin = Annotated[Principal, Depends(admin_principal)]
RESOURCES = "resources"


def period(start: str, doc: dict[str, Any] | None) -> Period:
    """One hour's or day's counters as the dashboard shows them."""
    doc = doc or {}
    count, errs = int(doc.get("count", 0)), int(doc.get("errors", 0))
    lat = doc.get("lat") or {}
    n = doc.get("latency_n") or 0
    return Period(
        start=start,
        count=count,
        errors=errs,
        success_rate=round((count - errs) / count, 4) if count else None,
        p50_ms=percentile(lat, 50),
        p95_ms=percentile(lat, 95),
        p99_ms=percentile(lat, 99),
        mean_ms=round(float(doc.get("latency_sum_ms", 0)) / n, 2) if n else None,
        statuses={unfield(k): int(v) for k, v in (doc.get("statuses") or {}).items()},
    )


def top(counts: dict[str, int], n: int) -> list[Ranked]:
    """The n largest counts, ties by name."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [Ranked(name=unfield(k), count=v) for k, v in ranked]


def activity(daily: dict[str, Doc], hours: list[datetime], days: list[datetime]) -> PathActivity:
    """Hour and day series of one path from its daily documents."""
    hour_rows = []
    for at in hours:
        day_doc: dict[str, Any] = daily.get(day_key(at)) or {}
        hour_doc = (day_doc.get("hours") or {}).get(hour_key(at)[-2:])
        hour_rows.append(period(hour_key(at), hour_doc))
    day_rows = [period(day_key(at), daily.get(day_key(at))) for at in days]
    return PathActivity(hours=hour_rows, days=day_rows)


async def _counts(db: AsyncDatabase[Doc]) -> tuple[int, int, int, int, int]:
    """Registered machines, endpoints, tasks; machines and GPUs online."""
    names = (MACHINES.collection, ENDPOINTS.collection, TASKS.collection)
    sizes = await asyncio.gather(*(db[n].count_documents({}) for n in names))
    machines: list[dict[str, Any]] = (
        await db[RESOURCES].find({}, {"online": 1, "gpus": 1}).to_list(None)
    )
    online = [m for m in machines if m.get("online")]
    gpus = sum(len(m.get("gpus") or []) for m in online)
    return sizes[0], sizes[1], sizes[2], len(online), gpus


def _counts_in(doc: Doc, name: str) -> dict[str, int]:
    found = doc.get(name)
    return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}


async def summary(
    db: AsyncDatabase[Doc], reader: LogReader, *, hours: int, days: int, top_n: int
) -> DashboardSummary:
    """The summary at this moment."""
    now = utcnow()
    hour_list = [now - timedelta(hours=i) for i in range(hours - 1, -1, -1)]
    day_list = [now - timedelta(days=i) for i in range(days - 1, -1, -1)]
    wanted = sorted({day_key(at) for at in (*hour_list, *day_list)})
    closed = day_key(now - timedelta(days=1))  # yesterday and today are read fresh
    counts, enqueue, ondemand = await asyncio.gather(
        _counts(db),
        reader.daily("enqueue", wanted, closed_before=closed),
        reader.daily("ondemand", wanted, closed_before=closed),
    )
    window = {day_key(at) for at in day_list}
    users: dict[str, int] = {}
    tasks: dict[str, int] = {}
    endpoints: dict[str, int] = {}
    for daily, targets in ((enqueue, tasks), (ondemand, endpoints)):
        for day, doc in daily.items():
            if day in window:
                merge_counts(users, _counts_in(doc, "users"))
                merge_counts(targets, _counts_in(doc, "targets"))
    return DashboardSummary(
        serving_machines=counts[0],
        endpoints=counts[1],
        tasks=counts[2],
        machines_online=counts[3],
        gpus_online=counts[4],
        enqueue=activity(enqueue, hour_list, day_list),
        ondemand=activity(ondemand, hour_list, day_list),
        top_users=top(users, top_n),
        top_tasks=top(tasks, top_n),
        top_endpoints=top(endpoints, top_n),
        at=now,
    )


@router.get("/dashboard", response_model=DashboardSummary)
async def dashboard(
    reader: Reader,
    who: Admin,
    hours: Annotated[int, Query(ge=1, le=168, description="Hours in the hourly series.")] = 24,
    days: Annotated[int, Query(ge=1, le=31, description="Days in the daily series and tops.")] = 7,
    top_n: Annotated[int, Query(alias="top", ge=1, le=100, description="Length of tops.")] = 10,
) -> DashboardSummary:
    """Registered and online resources, request activity, top users, tasks and endpoints."""
    try:
        with store_errors():
            return await summary(reader.db, reader, hours=hours, days=days, top_n=top_n)
    except StoreUnavailable as exc:
        raise errors.store_unavailable() from exc
