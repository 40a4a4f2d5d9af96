"""The three mapping lists (admins only): search, paging, create with errors at the field
(`unknown_queue` offered with the known queues, the replica health warnings), delete, and each
mapping's audit trail. Every change is the admin API's own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from schemas.collections import ENDPOINT_MAPPINGS, SERVING_MACHINES, TASK_MAPPINGS
from services.console.errors import ApiFailed, Forbidden
from services.console.web import Admin, Posted, console_of, render

router = APIRouter()
PAGE_SIZES = (10, 25, 50, 100)


@dataclass(frozen=True)
class Field:
    """One form field: its name in the API, its label, and how it is entered."""

    name: str
    label: str
    kind: str = "text"  # text, textarea, number
    required: bool = True


@dataclass(frozen=True)
class Kind:
    """One mapping collection."""

    api: str
    audit: str
    title: str
    fields: tuple[Field, ...]
    columns: tuple[tuple[str, str], ...]  # (field, label)

    def key_of(self, row: dict[str, Any]) -> str:
        """The id the API deletes by."""
        if self.api == "endpoint-mappings":
            return f"{row['machine_id']}/{row['endpoint']}"
        return str(row["task_id"] if self.api == "task-mappings" else row["machine_id"])


KINDS = {
    "tasks": Kind(
        "task-mappings",
        TASK_MAPPINGS,  # the audit trail names a change by its collection
        "tasks",
        (
            Field("clearml_task_id", "clearml_task_id"),
            Field("default_queue", "default_queue"),
            Field("allowed_queues", "allowed_queues", required=False),
            Field("description", "description", "textarea", required=False),
        ),
        (
            ("task_id", "task_id"),
            ("default_queue", "default_queue"),
            ("allowed_queues", "allowed"),
            ("description", "description"),
            ("created_by", "created_by"),
        ),
    ),
    "machines": Kind(
        "serving-machines",
        SERVING_MACHINES,
        "machines",
        (
            Field("serving_task_id", "serving_task_id"),
            Field("base_urls", "base_urls", "textarea"),
            Field("description", "description", "textarea", required=False),
        ),
        (
            ("machine_id", "machine_id"),
            ("base_urls", "replicas"),
            ("description", "description"),
            ("created_by", "created_by"),
        ),
    ),
    "endpoints": Kind(
        "endpoint-mappings",
        ENDPOINT_MAPPINGS,
        "endpoints",
        (
            Field("machine_id", "machine_id"),
            Field("endpoint", "endpoint"),
            Field("timeout_s", "timeout_s", "number", required=False),
        ),
        (("machine_id", "machine_id"), ("endpoint", "endpoint"), ("timeout_s", "timeout_s")),
    ),
}
KindName = Annotated[str, Path(pattern=r"^(tasks|machines|endpoints)$")]


def body_of(kind: Kind, form: dict[str, str]) -> dict[str, Any]:
    """The API's JSON body from the form's text fields."""
    body: dict[str, Any] = {}
    for field in kind.fields:
        raw = form.get(field.name, "").strip()
        if field.name == "allowed_queues":
            body[field.name] = [q.strip() for q in raw.split(",") if q.strip()]
        elif field.name == "base_urls":
            body[field.name] = [u.strip() for u in raw.splitlines() if u.strip()]
        elif field.kind == "number":
            if raw:
                body[field.name] = raw  # the API validates and says what is wrong, at the field
        else:
            body[field.name] = raw
    return body


def field_errors(failure: ApiFailed) -> dict[str, str]:
    """The API's per-field errors, by field name ('' for the form as a whole)."""
    errors: dict[str, str] = {}
    if isinstance(failure.details, list):
        for item in failure.details:
            if isinstance(item, dict):
                name = str(item.get("field", "")).split(".")[0]
                errors.setdefault(name if name != "(body)" else "", str(item.get("error")))
    if not errors:
        errors[""] = failure.message
    return errors


def _matches(row: dict[str, Any], q: str) -> bool:
    return q.lower() in " ".join(str(v) for v in row.values()).lower()


async def _list_page(
    request: Request,
    session: Any,
    name: str,
    *,
    q: str = "",
    page: int = 1,
    size: int = 10,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    kind = KINDS[name]
    rows: list[dict[str, Any]] = await console_of(request).api.get(session, f"/v1/admin/{kind.api}")
    rows = [r for r in rows if not q or _matches(r, q)]
    total = len(rows)
    pages = max(1, -(-total // size))
    page = min(max(page, 1), pages)
    shown = rows[(page - 1) * size : page * size]
    return render(
        request,
        "mappings.html",
        session,
        status=status,
        name=name,
        kind=kind,
        rows=shown,
        keys=[kind.key_of(r) for r in shown],
        q=q,
        page=page,
        pages=pages,
        size=size,
        sizes=PAGE_SIZES,
        total=total,
        first=(page - 1) * size + 1 if total else 0,
        last=(page - 1) * size + len(shown),
        **{"form": {}, "errors": {}, "known_queues": [], "created": None, **extra},
    )


@router.get("/mappings/{name}")
async def mapping_list(
    request: Request,
    name: KindName,
    session: Admin,
    *,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=100)] = 10,
) -> HTMLResponse:
    """The list, searched and paged."""
    return await _list_page(request, session, name, q=q, page=page, size=size)


@router.post("/mappings/{name}")
async def mapping_create(request: Request, name: KindName, session: Posted) -> Response:
    """Create from the form; errors come back at their fields."""
    if not session.is_admin:
        return await _forbidden()
    kind = KINDS[name]
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    force = form.get("force") == "on"
    try:
        created = await console_of(request).api.post(
            session, f"/v1/admin/{kind.api}", body_of(kind, form), force=force or None
        )
    except ApiFailed as failure:
        if failure.status >= 500:
            raise
        known = failure.details.get("known", []) if isinstance(failure.details, dict) else []
        return await _list_page(
            request,
            session,
            name,
            status=failure.status,
            form=form,
            errors=field_errors(failure),
            known_queues=known,
        )
    return await _list_page(request, session, name, status=201, created=created)


@router.post("/mappings/{name}/delete")
async def mapping_delete(request: Request, name: KindName, session: Posted) -> Response:
    """Delete one mapping, then back to the list."""
    if not session.is_admin:
        return await _forbidden()
    key = str((await request.form()).get("key", ""))
    await console_of(request).api.delete(
        session, f"/v1/admin/{KINDS[name].api}/{quote(key, safe='/')}"
    )
    return RedirectResponse(f"/mappings/{name}", status_code=303)


@router.get("/mappings/{name}/audit")
async def mapping_audit(
    request: Request,
    name: KindName,
    session: Admin,
    key: Annotated[str | None, Query(max_length=300)] = None,
) -> HTMLResponse:
    """The audit trail of one mapping (or of the whole kind)."""
    kind = KINDS[name]
    trail = await console_of(request).api.get(
        session, "/v1/admin/audit", kind=kind.audit, key=key, limit=200
    )
    return render(request, "audit.html", session, name=name, kind=kind, key=key, trail=trail)


async def _forbidden() -> Response:
    raise Forbidden("This action needs the admin role.")
