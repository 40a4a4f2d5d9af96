"""Log routes: every log for admins (`/v1/admin/logs`), one's own for users (`/v1/logs`).

Filtered by user (admins), status, task or endpoint, and time range; newest first; paginated by
an opaque cursor; as JSON pages, or as CSV (`Accept: text/csv` or a `.csv` suffix), streamed page
by page. Users see their own logs without internal ids; admins also get them under `admin`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from runtime.http import ApiError
from runtime.mongo import database
from schemas import logcsv
from schemas.admin import LogEntry, LogPage
from schemas.api import NAME, OPAQUE_ID
from schemas.views import PATHS
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import admin_principal, bearer_principal, ingest_of
from services.ingest.logquery import (
    CursorError,
    LogFilter,
    cursor_key,
    decode_cursor,
    encode_cursor,
)
from services.ingest.logviews import LogReader
from services.ingest.store import StoreUnavailable

admin_router = APIRouter(prefix="/v1/admin", tags=["admin"])
user_router = APIRouter(tags=["requests"])
Admin = Annotated[Principal, Depends(admin_principal)]
User = Annotated[Principal, Depends(bearer_principal)]
PathName = Literal["enqueue", "ondemand"]
ADMIN_FIELDS = ("template_task_id", "clone_id", "serving_task_id", "replica")
#: Rows per page while streaming CSV, and at most in one export.
CSV_PAGE, CSV_MAX_ROWS = 200, 100_000
CSV_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "Logs as CSV, newest first."}
}


def reader_of(request: Request) -> LogReader:
    """The process's log reader (made on first use)."""
    reader: LogReader | None = getattr(request.app.state, "log_reader", None)
    if reader is None:
        reader = LogReader(database(request.app.state.mongo, ingest_of(request).settings))
        request.app.state.log_reader = reader
    return reader


Reader = Annotated[LogReader, Depends(reader_of)]


def _utc(at: datetime | None) -> datetime | None:
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


class LogParams:
    """The filters and paging every log route takes."""

    def __init__(
        self,
        *,
        status: Annotated[str | None, Query(pattern=NAME, description="Latest state.")] = None,
        task_id: Annotated[
            str | None, Query(pattern=OPAQUE_ID, description="Opaque task id (enqueue).")
        ] = None,
        machine_id: Annotated[
            str | None, Query(pattern=OPAQUE_ID, description="Opaque machine id (on-demand).")
        ] = None,
        endpoint: Annotated[
            str | None, Query(pattern=NAME, description="Endpoint (with machine_id).")
        ] = None,
        since: Annotated[datetime | None, Query(description="Accepted at or after (UTC).")] = None,
        until: Annotated[datetime | None, Query(description="Accepted at or before (UTC).")] = None,
        cursor: Annotated[str | None, Query(max_length=400, description="`next_cursor`.")] = None,
        limit: Annotated[int, Query(ge=1, le=200, description="Page size.")] = 50,
    ) -> None:
        self.status, self.task_id, self.machine_id, self.endpoint = (
            status,
            task_id,
            machine_id,
            endpoint,
        )
        self.since, self.until, self.cursor, self.limit = _utc(since), _utc(until), cursor, limit

    def filter(self, path: str | None, user: str | None) -> LogFilter:
        """The filter; 422 for combinations that cannot match anything by mistake."""
        if self.endpoint is not None and self.machine_id is None:
            raise ApiError(422, "invalid_request", "`endpoint` needs `machine_id`.")
        if self.task_id is not None and (self.machine_id is not None or path == "ondemand"):
            raise ApiError(422, "invalid_request", "`task_id` filters enqueue logs only.")
        if self.machine_id is not None and path == "enqueue":
            raise ApiError(422, "invalid_request", "`machine_id` filters on-demand logs only.")
        if self.since and self.until and self.since > self.until:
            raise ApiError(422, "invalid_request", "`since` is after `until`.")
        paths: tuple[str, ...] = (path,) if path else PATHS
        target = self.task_id
        if self.machine_id is not None:
            paths = ("ondemand",)
            if self.endpoint is not None:
                target = f"{self.machine_id}/{self.endpoint}"
        elif self.task_id is not None:
            paths = ("enqueue",)
        return LogFilter(
            paths=paths,
            user=user,
            status=self.status,
            target=target,
            machine=self.machine_id if self.endpoint is None else None,
            since=self.since,
            until=self.until,
        )


Params = Annotated[LogParams, Depends()]


def entry(doc: dict[str, Any], *, admin: bool) -> LogEntry:
    """A view document as the API shows it (internal fields to admins only)."""
    fields = {k: v for k, v in doc.items() if k not in ADMIN_FIELDS and k != "_id"}
    fields["latency_ms"] = {
        k: v for k, v in (doc.get("latency_ms") or {}).items() if isinstance(v, int | float)
    }
    if admin:
        fields["admin"] = {k: doc.get(k) for k in ADMIN_FIELDS if doc.get(k) is not None}
    try:
        return LogEntry.model_validate(fields)
    except ValidationError:  # a hand-edited document: show what is readable
        return LogEntry(request_id=str(doc["_id"]), path=str(doc.get("path")), status="unknown")


async def _page(
    reader: LogReader, flt: LogFilter, cursor: str | None, limit: int, *, admin: bool, key: bytes
) -> LogPage:
    try:
        after = decode_cursor(cursor, flt, key) if cursor else flt.start()
        docs, following = await reader.page(flt, after, limit)
    except CursorError as exc:
        raise ApiError(422, "invalid_cursor", str(exc)) from exc
    except StoreUnavailable as exc:
        raise errors.store_unavailable() from exc
    return LogPage(
        items=[entry(d, admin=admin) for d in docs],
        next_cursor=encode_cursor(following, flt, key) if following else None,
    )


async def _csv_lines(
    reader: LogReader, flt: LogFilter, cursor: str | None, *, admin: bool, key: bytes
) -> AsyncIterator[str]:
    sent = 0
    while True:
        page = await _page(reader, flt, cursor, CSV_PAGE, admin=admin, key=key)
        yield logcsv.lines(page.items, header=sent == 0)
        sent += len(page.items) or 1
        cursor = page.next_cursor
        if cursor is None or sent >= CSV_MAX_ROWS:
            return


async def _respond(
    request: Request,
    reader: LogReader,
    flt: LogFilter,
    params: LogParams,
    *,
    csv: bool,
    admin: bool,
) -> LogPage | StreamingResponse:
    key = cursor_key(ingest_of(request).settings.id_secret.get_secret_value())
    if csv or "text/csv" in request.headers.get("accept", ""):
        await _page(reader, flt, params.cursor, 1, admin=admin, key=key)  # errors before streaming
        return StreamingResponse(
            _csv_lines(reader, flt, params.cursor, admin=admin, key=key),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="mlbus-logs.csv"'},
        )
    return await _page(reader, flt, params.cursor, params.limit, admin=admin, key=key)


AdminUser = Annotated[
    str | None, Query(min_length=1, max_length=256, description="Only this user's logs.")
]


@admin_router.get(
    "/logs.csv", response_class=StreamingResponse, response_model=None, responses=CSV_DOC
)
async def admin_logs_csv(
    request: Request, reader: Reader, params: Params, who: Admin, user: AdminUser = None
) -> StreamingResponse | LogPage:
    """Every log (both paths) as CSV."""
    return await _respond(request, reader, params.filter(None, user), params, csv=True, admin=True)


@admin_router.get(
    "/logs/{path}.csv", response_class=StreamingResponse, response_model=None, responses=CSV_DOC
)
async def admin_path_logs_csv(
    path: PathName,
    *,
    request: Request,
    reader: Reader,
    params: Params,
    who: Admin,
    user: AdminUser = None,
) -> StreamingResponse | LogPage:
    """One path's logs as CSV."""
    return await _respond(request, reader, params.filter(path, user), params, csv=True, admin=True)


@admin_router.get("/logs", response_model=LogPage, responses=CSV_DOC)
async def admin_logs(
    request: Request, reader: Reader, params: Params, who: Admin, user: AdminUser = None
) -> StreamingResponse | LogPage:
    """Every log of both paths, newest first (CSV with `Accept: text/csv`)."""
    return await _respond(request, reader, params.filter(None, user), params, csv=False, admin=True)


@admin_router.get("/logs/{path}", response_model=LogPage, responses=CSV_DOC)
async def admin_path_logs(
    path: PathName,
    *,
    request: Request,
    reader: Reader,
    params: Params,
    who: Admin,
    user: AdminUser = None,
) -> StreamingResponse | LogPage:
    """Enqueue or on-demand logs, newest first (CSV with `Accept: text/csv`)."""
    return await _respond(request, reader, params.filter(path, user), params, csv=False, admin=True)


@user_router.get("/v1/logs", response_model=LogPage, responses=CSV_DOC)
async def my_logs(
    request: Request, reader: Reader, params: Params, who: User
) -> StreamingResponse | LogPage:
    """Your own logs of both paths, newest first (CSV with `Accept: text/csv`)."""
    return await _respond(
        request, reader, params.filter(None, who.user), params, csv=False, admin=False
    )


@user_router.get("/v1/logs/{path}", response_model=LogPage, responses=CSV_DOC)
async def my_path_logs(
    path: PathName, *, request: Request, reader: Reader, params: Params, who: User
) -> StreamingResponse | LogPage:
    """Your own enqueue or on-demand logs, newest first (CSV with `Accept: text/csv`)."""
    return await _respond(
        request, reader, params.filter(path, who.user), params, csv=False, admin=False
    )
