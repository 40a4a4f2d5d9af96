"""Who a token belongs to, as ingest sees it (`GET /v1/me`): what a page in front of the API
(the console) shows and allows is decided from this answer, never from its own reading of a
token."""

from __future__ import annotations

from pydantic import Field

from schemas.base import Model


class Caller(Model):
    """The caller of `GET /v1/me`: the user name and what the token allows in mlbus."""

    user: str = Field(description="The token's user name.", examples=["alice"])
    grants: list[str] = Field(
        description="mlbus roles the token grants: 'admin', 'operator', 'user' (always).",
        examples=[["user"]],
    )
    roles: list[str] = Field(
        description="The token's roles that count (Keycloak's names).", examples=[["Manager"]]
    )
    expires_at: float | None = Field(
        default=None, description="When ingest stops accepting the token (epoch seconds)."
    )
