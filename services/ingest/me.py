"""`GET /v1/me`: who the token belongs to and what it allows, by the same rules as every other
route (roles.py). The console asks this once per login instead of reading roles itself."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends

from schemas.identity import Caller
from services.ingest.auth import Principal
from services.ingest.deps import bearer_principal

router = APIRouter(tags=["requests"])


@router.get("/v1/me", response_model=Caller, summary="Who the token belongs to")
async def me(who: Annotated[Principal, Depends(bearer_principal)]) -> Caller:
    """The caller's user name, the mlbus roles the token grants, and the roles that count."""
    grants = set(who.grants) | ({"admin"} if who.is_admin else set())
    return Caller(
        user=who.user,
        grants=sorted(grants),
        roles=sorted(who.roles),
        expires_at=who.expires_at if math.isfinite(who.expires_at) else None,
    )
