"""An on-demand call's log, as the router publishes it: one RequestLogged on `mlbus.logs` with the
call's raw log inside (`record`). The logger folds it into the read models and writes the raw
log to `ondemand_logs` (its one writer). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from schemas.base import Envelope
from schemas.logs import OnDemandRecord, RequestLogged
from services.inference_router.outcomes import Outcome


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _text(value: Any) -> str | None:
    """A field of the request as text (a salvaged request's may be anything, or None)."""
    return None if value is None else str(value)


def call_log(env: Envelope[Any], outcome: Outcome) -> RequestLogged:
    """The RequestLogged of one call. `env` may be what a failure hook salvaged of a message that
    did not decode: its payload's fields are then read as text, or None."""
    p, reply = env.payload, outcome.reply
    bus = (outcome.consumed_at - env.created_at).total_seconds() * 1000
    total = (outcome.finished_at - env.created_at).total_seconds() * 1000
    machine, endpoint = _text(p.machine_id) or "", _text(p.endpoint) or ""
    record = OnDemandRecord(
        machine_id=machine,
        endpoint=endpoint,
        version=_text(p.version),
        serving_task_id=outcome.serving_task_id,
        replica_url=outcome.replica_url,
        http_status=reply.http_status,
        error_code=reply.error_code,
        error=reply.message if not reply.ok else None,
        latency_ms={"bus": _ms(max(bus, 0.0)), "model": reply.model_ms, "total": _ms(total)},
        created_at=env.created_at,
        finished_at=outcome.finished_at,
    )
    return RequestLogged(
        request_id=env.id,
        path="ondemand",
        status=outcome.status,
        user=env.user,
        target=f"{machine}/{endpoint}" if machine else "",
        latency_ms=round(max(total, 0.0), 3),
        details={"http_status": reply.http_status, "error_code": reply.error_code},
        at=outcome.finished_at,
        accepted_at=env.created_at,
        record=record,
    )
