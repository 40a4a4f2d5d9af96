"""Dead letters (mlbus.dlq): every message a worker could not handle, with why."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.base import Model, utcnow


class DeadLetter(Model):
    """A message that failed for good, kept whole so that `mlbus dlq replay` can resend it."""

    topic: str = Field(description="Where it was read.", examples=["mlbus.requests.enqueue"])
    partition: int = Field(description="Its partition.", examples=[0])
    offset: int = Field(description="Its offset.", examples=[42])
    key: str | None = Field(default=None, description="Its key, as text.", examples=["5f0c8a9e"])
    consumer_group: str = Field(description="Who gave up on it.", examples=["mlbus-enqueuer"])
    error_class: str = Field(description="Exception class.", examples=["SchemaError"])
    reason: str = Field(description="Human reason.", examples=["payload.input: not an object"])
    raw_b64: str = Field(description="The original value bytes, base64.", examples=["eyJ4Ijox"])
    failed_at: datetime = Field(default_factory=utcnow, description="When (UTC).")
