"""The pages that read: the admin dashboard, resources, notifications, a person's own requests,
the catalog of what they may call. Each reads through ingest's API with the session's token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from services.console.web import Admin, Operator, User, console_of, render

router = APIRouter()
#: Rows of "my requests" (refreshed every 2 s: each refresh is one API page of this size).
MY_ROWS = 20
FINAL = frozenset({"completed", "failed", "stopped", "answered", "rejected", "timeout", "error"})


def _chart(activity: dict[str, Any], series: str) -> dict[str, Any]:
    """One path's hour or day series as the chart script wants it: labels and counts."""
    rows = activity.get(series) or []
    return {
        "labels": [str(r["start"]) for r in rows],
        "counts": [int(r["count"]) for r in rows],
        "errors": [int(r["errors"]) for r in rows],
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests, success rate and the worst percentiles over a series."""
    count = sum(int(r["count"]) for r in rows)
    errors = sum(int(r["errors"]) for r in rows)

    def worst(key: str) -> float | None:
        seen = [float(r[key]) for r in rows if r.get(key) is not None]
        return max(seen) if seen else None

    return {
        "count": count,
        "errors": errors,
        "success_rate": round(100 * (count - errors) / count, 2) if count else None,
        "p50": worst("p50_ms"),
        "p95": worst("p95_ms"),
        "p99": worst("p99_ms"),
    }


async def _summary(request: Request, session: Any) -> dict[str, Any]:
    api = console_of(request).api
    data: dict[str, Any] = await api.get(session, "/v1/admin/dashboard", hours=24, days=30)
    charts = {
        path: {"hours": _chart(data[path], "hours"), "days": _chart(data[path], "days")}
        for path in ("enqueue", "ondemand")
    }
    totals = {path: _totals(data[path]["days"]) for path in ("enqueue", "ondemand")}
    return {"summary": data, "charts": charts, "totals": totals}


@router.get("/dashboard")
async def dashboard(request: Request, session: Admin) -> HTMLResponse:
    """Counts, charts per hour and per day of both paths, rates, percentiles, tops."""
    return render(request, "dashboard.html", session, **await _summary(request, session))


@router.get("/dashboard/summary")
async def dashboard_summary(request: Request, session: Admin) -> HTMLResponse:
    """The dashboard's live part (htmx swaps it every few seconds)."""
    return render(request, "_summary.html", session, **await _summary(request, session))


@router.get("/resources")
async def resources(request: Request, session: Operator) -> HTMLResponse:
    """Machines, GPUs (utilisation and memory bars), queues."""
    view = await console_of(request).api.get(session, "/v1/resources")
    return render(request, "resources.html", session, view=view)


@router.get("/notifications")
async def notifications(
    request: Request,
    session: User,
    before: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    """Notifications (everyone's for operators and admins, one's own for users: the API says)."""
    page = await console_of(request).api.get(session, "/v1/notifications", before=before, limit=50)
    return render(request, "notifications.html", session, page=page, before=before)


@router.get("/notifications/rows")
async def notification_rows(request: Request, session: User) -> HTMLResponse:
    """The newest notifications' rows (htmx refreshes the first page live)."""
    page = await console_of(request).api.get(session, "/v1/notifications", limit=50)
    return render(request, "_notification_rows.html", session, page=page, before=None)


@router.get("/my/requests")
async def my_requests(request: Request, session: User) -> HTMLResponse:
    """One's own requests, newest first, their status refreshed live."""
    page = await console_of(request).api.get(session, "/v1/logs", limit=MY_ROWS)
    return render(request, "my_requests.html", session, page=page, final=FINAL)


@router.get("/my/requests/rows")
async def my_request_rows(request: Request, session: User) -> HTMLResponse:
    """The rows of the list above (htmx refreshes them)."""
    page = await console_of(request).api.get(session, "/v1/logs", limit=MY_ROWS)
    return render(request, "_my_rows.html", session, page=page, final=FINAL)


@router.get("/requests/{request_id}")
async def request_detail(
    request: Request,
    request_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,100}$")],
    session: User,
) -> HTMLResponse:
    """One request: status, timeline, latency split (admins), live until it ends. Another
    user's request is the API's 404, as by the API."""
    found = await console_of(request).api.get(session, f"/v1/requests/{request_id}")
    return render(request, "request.html", session, req=found, final=FINAL)


@router.get("/catalog")
async def catalog(request: Request, session: User) -> HTMLResponse:
    """The task ids and endpoints the signed-in person may call, with their descriptions: ingest's
    `GET /v1/catalog` (its rule of who may call what, read with this person's token)."""
    found = await console_of(request).api.get(session, "/v1/catalog")
    return render(request, "catalog.html", session, catalog=found)
