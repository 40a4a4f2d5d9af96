"""On-demand inference: request and reply, matched by request id."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.base import JSONValue, Model


class InferenceRequested(Model):
    """Command: call a serving endpoint and publish the reply to `reply_to`."""

    machine_id: str = Field(description="Opaque id of the serving machine.", examples=["7c1d"])
    endpoint: str = Field(description="ClearML Serving endpoint name.", examples=["parking"])
    version: str | None = Field(default=None, description="Endpoint version.", examples=["1"])
    input: JSONValue = Field(default=None, description="Body sent to the model.")
    reply_to: str = Field(description="Topic of the waiting ingest.", examples=["mlbus.replies.i1"])
    deadline: datetime = Field(description="After this, the caller has given up (UTC).")


class InferenceReplied(Model):
    """The outcome of one inference request."""

    ok: bool = Field(description="True when the model answered 2xx.", examples=[True])
    http_status: int = Field(description="Status to give the caller.", examples=[200])
    output: JSONValue = Field(default=None, description="The model's JSON answer.")
    error_code: str | None = Field(default=None, description="Stable code.", examples=[None])
    message: str | None = Field(default=None, description="Human explanation.", examples=[None])
    model_ms: float | None = Field(default=None, description="Time in the model.", examples=[3.2])
