"""Every way a request ends, as the reply the caller gets and the status its log records.

| what happened                         | http | error_code     | log status  |
|---------------------------------------|------|----------------|-------------|
| model answered 2xx                    | 2xx  | -              | ok          |
| model answered 4xx                    | 4xx  | model_rejected | model_error |
| 5xx, reset, refused, no replica       | 502  | model_failed   | failed      |
| no answer within the call's budget    | 504  | model_timeout  | timeout     |
| deadline passed before it was sent    | 504  | expired        | expired     |
| machine or endpoint no longer mapped  | 404  | not_found      | failed      |
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from schemas.base import JSONValue, utcnow
from schemas.inference import InferenceReplied
from services.inference_router.model import ModelAnswer


@dataclass(frozen=True)
class Outcome:
    """How one request ended; shared by every delivery of the same request id."""

    reply: InferenceReplied
    status: str
    consumed_at: datetime
    finished_at: datetime = field(default_factory=utcnow)
    replica_url: str | None = None
    serving_task_id: str | None = None


def _detail(body: JSONValue) -> str:
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    return json.dumps(detail, separators=(",", ":"))


def from_answer(answer: ModelAnswer) -> tuple[InferenceReplied, str]:
    """A model's HTTP answer as a reply and a log status."""
    ms = round(answer.model_ms, 3)
    if 200 <= answer.status < 300:
        reply = InferenceReplied(
            ok=True, http_status=answer.status, output=answer.body, model_ms=ms
        )
        return reply, "ok"
    if 400 <= answer.status < 500:
        reply = InferenceReplied(
            ok=False,
            http_status=answer.status,
            error_code="model_rejected",
            message=_detail(answer.body),
            model_ms=ms,
        )
        return reply, "model_error"
    return failed(f"The model failed (HTTP {answer.status}).", ms), "failed"


def failed(message: str, model_ms: float | None = None) -> InferenceReplied:
    """502: the model failed or could not be reached."""
    return InferenceReplied(
        ok=False, http_status=502, error_code="model_failed", message=message, model_ms=model_ms
    )


def timed_out(budget_s: float, model_ms: float | None = None) -> InferenceReplied:
    """504: no answer in time."""
    return InferenceReplied(
        ok=False,
        http_status=504,
        error_code="model_timeout",
        message=f"The model did not answer within {budget_s:.1f} s.",
        model_ms=model_ms,
    )


def expired() -> InferenceReplied:
    """504: the caller's deadline had passed; the model was not called."""
    return InferenceReplied(
        ok=False,
        http_status=504,
        error_code="expired",
        message="The request's deadline passed before it reached the model; it was not sent.",
    )


def not_found(machine_id: str, endpoint: str) -> InferenceReplied:
    """404: the mapping is gone."""
    return InferenceReplied(
        ok=False,
        http_status=404,
        error_code="not_found",
        message=f"No endpoint '{endpoint}' is mapped on serving machine '{machine_id}'.",
    )
