"""Admin routes: task mappings, serving machines, endpoint mappings (admin role only).

Real ClearML ids and replica addresses appear in these responses and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from runtime.http import ApiError
from schemas.api import (
    EndpointMapping,
    EndpointMappingIn,
    ServingMachine,
    ServingMachineIn,
    TaskMapping,
    TaskMappingIn,
)
from schemas.base import utcnow
from services.ingest import checks, errors
from services.ingest.audit import Audited, AuditTrail
from services.ingest.auth import Principal
from services.ingest.deps import Ingest, admin_principal, ingest_of
from services.ingest.mappings import MappingCache, opaque_id
from services.ingest.store import ENDPOINTS, MACHINES, TASKS, Kind, M, MappingExists

router = APIRouter(prefix="/v1/admin", tags=["admin"])
IngestDep = Annotated[Ingest, Depends(ingest_of)]
Admin = Annotated[Principal, Depends(admin_principal)]


async def _add(
    ingest: Ingest, kind: Kind[M], cache: MappingCache[M], mapping: M, audit: AuditTrail
) -> M:
    try:
        await ingest.store.add(kind, mapping)
    except MappingExists as exc:
        key = kind.key(mapping)
        raise ApiError(
            409, "mapping_exists", f"{key} is already mapped.", details={"id": key}
        ) from exc
    cache.put(mapping)
    await audit.record("create", kind.collection, kind.key(mapping), None, mapping)
    return mapping


async def _delete(
    kind: Kind[Any], cache: MappingCache[Any], ingest: Ingest, key: str, audit: AuditTrail
) -> None:
    before = await ingest.store.one(kind, key)
    if not await ingest.store.delete(kind, key):
        raise errors.not_found("mapping_not_found", f"Nothing is registered under {key}.")
    cache.drop(key)
    await audit.record("delete", kind.collection, key, before, None)


def _opaque(ingest: Ingest, real_id: str) -> str:
    return opaque_id(ingest.settings.id_secret.get_secret_value().encode(), real_id)


@router.post("/task-mappings", status_code=201, response_model=TaskMapping)
async def add_task_mapping(
    body: TaskMappingIn,
    request: Request,
    *,
    ingest: IngestDep,
    who: Admin,
    audit: Audited,
    force: Annotated[bool, Query(description="Register even if a queue is unknown.")] = False,
) -> TaskMapping:
    """Register a ClearML template under a new opaque id (its queues must exist, or `force`)."""
    queues = {body.default_queue, *body.allowed_queues}
    warnings = await checks.queue_warnings(request, queues, force=force)
    mapping = TaskMapping(
        task_id=_opaque(ingest, body.clearml_task_id),
        clearml_task_id=body.clearml_task_id,
        default_queue=body.default_queue,
        allowed_queues=sorted(set(body.allowed_queues) - {body.default_queue}),
        description=body.description,
        created_at=utcnow(),
        created_by=who.user,
    )
    added = await _add(ingest, TASKS, ingest.tasks, mapping, audit)
    return added.model_copy(update={"warnings": warnings})


@router.get("/task-mappings", response_model=list[TaskMapping])
async def list_task_mappings(ingest: IngestDep, who: Admin) -> list[TaskMapping]:
    """Every task mapping."""
    return await ingest.store.all(TASKS)


@router.delete("/task-mappings/{task_id}", status_code=204)
async def delete_task_mapping(task_id: str, ingest: IngestDep, who: Admin, audit: Audited) -> None:
    """Unregister a task; requests already on the bus still complete."""
    await _delete(TASKS, ingest.tasks, ingest, task_id, audit)


@router.post("/serving-machines", status_code=201, response_model=ServingMachine)
async def add_serving_machine(
    body: ServingMachineIn, ingest: IngestDep, who: Admin, audit: Audited
) -> ServingMachine:
    """Register a ClearML Serving service and its replicas under a new opaque machine id."""
    bad = [u for u in body.base_urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise ApiError(422, "invalid_request", f"Replica URLs must be http(s): {bad}.")
    machine = ServingMachine(
        machine_id=_opaque(ingest, body.serving_task_id),
        serving_task_id=body.serving_task_id,
        base_urls=[u.rstrip("/") for u in body.base_urls],
        description=body.description,
        created_at=utcnow(),
        created_by=who.user,
    )
    warnings = await checks.replica_warnings(machine.base_urls)
    added = await _add(ingest, MACHINES, ingest.machines, machine, audit)
    return added.model_copy(update={"warnings": warnings})


@router.get("/serving-machines", response_model=list[ServingMachine])
async def list_serving_machines(ingest: IngestDep, who: Admin) -> list[ServingMachine]:
    """Every serving machine."""
    return await ingest.store.all(MACHINES)


@router.delete("/serving-machines/{machine_id}", status_code=204)
async def delete_serving_machine(
    machine_id: str, ingest: IngestDep, who: Admin, audit: Audited
) -> None:
    """Unregister a serving machine."""
    await _delete(MACHINES, ingest.machines, ingest, machine_id, audit)


@router.post("/endpoint-mappings", status_code=201, response_model=EndpointMapping)
async def add_endpoint_mapping(
    body: EndpointMappingIn, ingest: IngestDep, who: Admin, audit: Audited
) -> EndpointMapping:
    """Make an endpoint of a registered serving machine callable."""
    if await ingest.machines.get(body.machine_id) is None:
        raise errors.not_found("machine_not_found", f"No serving machine {body.machine_id}.")
    mapping = EndpointMapping(**body.model_dump(), created_at=utcnow())
    return await _add(ingest, ENDPOINTS, ingest.endpoints, mapping, audit)


@router.get("/endpoint-mappings", response_model=list[EndpointMapping])
async def list_endpoint_mappings(ingest: IngestDep, who: Admin) -> list[EndpointMapping]:
    """Every endpoint mapping."""
    return await ingest.store.all(ENDPOINTS)


@router.delete("/endpoint-mappings/{machine_id}/{endpoint}", status_code=204)
async def delete_endpoint_mapping(
    machine_id: str, endpoint: str, ingest: IngestDep, who: Admin, audit: Audited
) -> None:
    """Make an endpoint uncallable."""
    await _delete(ENDPOINTS, ingest.endpoints, ingest, f"{machine_id}/{endpoint}", audit)
