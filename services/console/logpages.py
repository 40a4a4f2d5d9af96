"""Enqueue and on-demand logs (admins): the API's filters, cursor paging, a CSV export streamed
from the API page by page as it comes (never built in memory), and a detail page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from services.console.web import Admin, console_of, render

router = APIRouter()
LogPath = Annotated[str, Path(pattern=r"^(enqueue|ondemand)$")]
FILTERS = ("user", "status", "task_id", "machine_id", "endpoint", "since", "until")


def _filters(request: Request) -> dict[str, str]:
    """The filter fields the page was asked with (the API validates them)."""
    return {
        name: request.query_params[name][:300] for name in FILTERS if request.query_params.get(name)
    }


@router.get("/logs/{path}")
async def logs(
    request: Request,
    path: LogPath,
    session: Admin,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    size: Annotated[int, Query(ge=1, le=200)] = 25,
) -> HTMLResponse:
    """One path's logs, newest first, one page at a time."""
    filters = _filters(request)
    page: dict[str, Any] = await console_of(request).api.get(
        session, f"/v1/admin/logs/{path}", cursor=cursor, limit=size, **filters
    )
    return render(
        request,
        "logs.html",
        session,
        log_path=path,
        page=page,
        filters=filters,
        size=size,
        cursor=cursor,
    )


@router.get("/logs/{path}/export.csv")
async def export(request: Request, path: LogPath, session: Admin) -> StreamingResponse:
    """The filtered logs as CSV (at most the API's 100,000 rows), passed through as ingest
    streams them, page by page."""
    chunks = await console_of(request).api.stream(
        session, f"/v1/admin/logs/{path}.csv", accept="text/csv", **_filters(request)
    )
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="mlbus-{path}-logs.csv"'},
    )
