"""Enqueue and on-demand logs (admins): the API's filters, cursor paging, and a CSV export.

The export is written here, in the console's process, from the API's JSON pages read one after
another by cursor (never built in memory), with a pause between pages: an export of 100,000 rows
is then a paced series of small reads for ingest, beside its on-demand traffic, instead of one
request that keeps ingest's event loop busy formatting for as long as it lasts (bench.console
measures both)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import ValidationError

from schemas import logcsv, status
from schemas.admin import LogEntry
from services.console.errors import ApiFailed
from services.console.sessions import Session
from services.console.web import Admin, Console, console_of, render

router = APIRouter()
#: The states a log's status filter offers (the enqueuer's and the inference router's words).
STATES = {
    "enqueue": status.ALL,
    "ondemand": ("ok", "model_error", "failed", "timeout", "expired"),
}
LogPath = Annotated[str, Path(pattern=r"^(enqueue|ondemand)$")]
FILTERS = ("user", "status", "task_id", "machine_id", "endpoint", "since", "until")
#: Rows per API page while exporting, and at most in one export (as ingest's own CSV route).
EXPORT_PAGE, EXPORT_MAX_ROWS = 200, 100_000


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
        states=STATES,
        page=page,
        filters=filters,
        size=size,
        cursor=cursor,
    )


async def _pages(
    console: Console, session: Session, path: str, filters: dict[str, str], first: dict[str, Any]
) -> AsyncIterator[str]:
    """CSV text, one API page at a time, paced."""
    page, sent = first, 0
    while True:
        entries = []
        for item in page.get("items") or []:
            try:
                entries.append(LogEntry.model_validate(item))
            except ValidationError:  # a row the API itself could not fully read: skip it
                continue
        yield logcsv.lines(entries, header=sent == 0)
        sent += len(entries) or 1
        cursor = page.get("next_cursor")
        if not cursor or sent >= EXPORT_MAX_ROWS:
            return
        await asyncio.sleep(console.settings.export_page_pause_s)
        try:
            page = await console.api.get(
                session, f"/v1/admin/logs/{path}", limit=EXPORT_PAGE, cursor=cursor, **filters
            )
        except ApiFailed:
            return  # the rows sent stay; a browser shows a shorter file, never a broken one


@router.get("/logs/{path}/export.csv")
async def export(request: Request, path: LogPath, session: Admin) -> StreamingResponse:
    """The filtered logs as CSV (at most 100,000 rows), newest first, written page by page."""
    console, filters = console_of(request), _filters(request)
    # The first page before the answer starts: a bad filter is an error page, not a CSV.
    first = await console.api.get(session, f"/v1/admin/logs/{path}", limit=EXPORT_PAGE, **filters)
    return StreamingResponse(
        _pages(console, session, path, filters, first),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="mlbus-{path}-logs.csv"'},
    )
