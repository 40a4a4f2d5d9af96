"""The envelope every message travels in, and the base model of every payload."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypeAliasType

#: A JSON value: scalars, lists and nested objects (what `input` may hold). Pydantic needs the
#: named alias to build a recursive schema; mypy reads the plain recursive alias.
if TYPE_CHECKING:
    JSONValue = Union[str, int, float, bool, list["JSONValue"], dict[str, "JSONValue"], None]  # noqa: UP007
else:
    JSONValue = TypeAliasType(
        "JSONValue",
        Union[str, int, float, bool, list["JSONValue"], dict[str, "JSONValue"], None],  # noqa: UP007
    )


class Model(BaseModel):
    """Base of every message model: immutable, unknown fields ignored (additive evolution)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


P = TypeVar("P", bound=Model)


def new_request_id() -> str:
    """A fresh request id: 32 lowercase hex characters (a UUID4 without dashes)."""
    return uuid.uuid4().hex


_last_event = [0, 0]  # [milliseconds, sequence] of the last id this process made


def new_event_id() -> str:
    """A fresh, time-ordered id: 12 hex digits of milliseconds since the epoch, a 6-digit
    sequence within the millisecond, then 14 random digits (32 in all).

    Ids made later sort later: strictly within a process, to the millisecond across processes.
    That is what resuming a stream "after the last event seen" needs; the random part keeps
    ids unique across producers.
    """
    millis = time.time_ns() // 1_000_000
    if millis <= _last_event[0]:
        millis, sequence = _last_event[0], _last_event[1] + 1
    else:
        sequence = 0
    _last_event[:] = [millis, sequence]
    return f"{millis:012x}{sequence:06x}{secrets.token_hex(7)}"


def utcnow() -> datetime:
    """Timezone-aware now, in UTC."""
    return datetime.now(UTC)


class Envelope(Model, Generic[P]):
    """One message on a topic: metadata around a typed payload.

    `id` is the request id and the idempotency key: a message delivered twice carries the same id,
    and every consumer makes its effect once per id.
    """

    id: str = Field(
        default_factory=new_request_id,
        description="Request id; the idempotency key.",
        examples=["5f0c8a9e2b7d4c1f9a3e6b8d0c2f4a61"],
        min_length=8,
        max_length=64,
    )
    type: str = Field(description="Message type, e.g. 'EnqueueTask'.", examples=["EnqueueTask"])
    schema_version: int = Field(
        description="Major version of the payload schema; additive changes keep it.",
        examples=[1],
        ge=1,
    )
    created_at: datetime = Field(
        default_factory=utcnow,
        description="When the message was created (UTC).",
        examples=["2026-11-26T12:00:00Z"],
    )
    user: str | None = Field(
        default=None, description="The user on whose behalf it was sent.", examples=["alice"]
    )
    trace: dict[str, str] = Field(
        default_factory=dict,
        description="Tracing context: ingest instance, client address, W3C traceparent.",
        examples=[{"ingest": "ingest-1"}],
    )
    payload: P = Field(description="The typed body.")


class RawEnvelope(Model):
    """The envelope with its payload left undecoded: used to read `type` and `schema_version`
    before choosing how to decode, and to dead-letter what does not decode."""

    id: str
    type: str
    schema_version: int
    payload: dict[str, Any]
