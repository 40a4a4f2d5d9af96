"""`GET /v1/catalog`: the opaque ids a caller may use, for pick lists (the Node-RED palette's
editor, the console). Only what users already send or read: opaque ids, descriptions, queue
names, timeouts and declared input shapes; never a real ClearML id or a replica address.

`read_catalog` is a plain function of (store, principal), apart from the route, so that other
front ends read the same catalog the same way.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from schemas.api import Catalog, CatalogEndpoint, CatalogTask
from services.ingest import errors
from services.ingest.auth import Principal
from services.ingest.deps import Ingest, bearer_principal, ingest_of
from services.ingest.store import ENDPOINTS, MACHINES, TASKS, IngestStore, StoreUnavailable

router = APIRouter(tags=["catalog"])
IngestDep = Annotated[Ingest, Depends(ingest_of)]
User = Annotated[Principal, Depends(bearer_principal)]


async def read_catalog(store: IngestStore, principal: Principal) -> Catalog:
    """What `principal` may use, sorted by description then id (StoreUnavailable). Every
    verified caller may use every mapping today; the principal is where a per-user rule would
    go. An endpoint whose serving machine is gone is left out: calling it would be a 404."""
    tasks = await store.all(TASKS)
    machines = {m.machine_id: m for m in await store.all(MACHINES)}
    endpoints = await store.all(ENDPOINTS)
    return Catalog(
        tasks=sorted(
            (
                CatalogTask(
                    task_id=t.task_id,
                    description=t.description,
                    default_queue=t.default_queue,
                    queues=[
                        t.default_queue,
                        *(q for q in t.allowed_queues if q != t.default_queue),
                    ],
                )
                for t in tasks
            ),
            key=lambda t: (t.description.lower(), t.task_id),
        ),
        endpoints=sorted(
            (
                CatalogEndpoint(
                    machine_id=e.machine_id,
                    endpoint=e.endpoint,
                    description=e.description,
                    machine_description=machines[e.machine_id].description,
                    timeout_s=e.timeout_s,
                    input_schema=e.input_schema,
                )
                for e in endpoints
                if e.machine_id in machines
            ),
            key=lambda e: (e.endpoint, e.machine_id),
        ),
    )


@router.get("/v1/catalog", response_model=Catalog)
async def catalog(ingest: IngestDep, who: User) -> Catalog:
    """The tasks you may enqueue and the model endpoints you may call, by opaque id, with
    their descriptions (and an endpoint's input shape when its mapping declares one)."""
    try:
        return await read_catalog(ingest.store, who)
    except StoreUnavailable as exc:
        raise errors.store_unavailable() from exc
