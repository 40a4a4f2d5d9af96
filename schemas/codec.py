"""Encoding and decoding envelopes to and from Kafka bytes.

Decoding is strict about what matters (a known major version, a payload that validates) and
lenient about the rest (unknown fields are ignored), so additive changes never break a consumer.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import ValidationError

from schemas.base import Envelope, Model, RawEnvelope, utcnow
from schemas.jsonlimits import ENVELOPE_DEPTH, raw_depth
from schemas.topics import TopicSpec


class SchemaError(ValueError):
    """A message that cannot be decoded: not JSON, not an envelope, unknown major version,
    or a payload that fails validation. Permanent: it goes to the dead-letter topic."""


def encode(envelope: Envelope[Any]) -> bytes:
    """Envelope → JSON bytes."""
    return envelope.model_dump_json().encode()


@functools.cache
def envelope_model(payload: type[Model]) -> type[Envelope[Any]]:
    """The envelope class parametrised with one payload model."""
    return cast("type[Envelope[Any]]", Envelope.__class_getitem__(payload))


def envelope_for(spec: TopicSpec, payload: Model, **fields: Any) -> Envelope[Any]:
    """Wrap a payload for a topic, stamping its type and schema version."""
    return envelope_model(type(payload))(
        type=spec.message_type, schema_version=spec.version, payload=payload, **fields
    )


def decode(spec: TopicSpec, raw: bytes | None) -> Envelope[Any]:
    """JSON bytes → envelope with a typed payload, or SchemaError saying exactly what is wrong."""
    if raw is None:
        raise SchemaError("empty message (tombstone) on a non-compacted topic")
    if too_deep(raw):
        raise SchemaError(f"nested deeper than {ENVELOPE_DEPTH} levels (schemas/jsonlimits.py)")
    try:
        head = RawEnvelope.model_validate_json(raw)
    except ValidationError as exc:
        raise SchemaError(f"not an mlbus envelope: {_first_error(exc)}") from exc
    if head.schema_version > spec.version:
        raise SchemaError(
            f"unsupported schema_version {head.schema_version} for {head.type} "
            f"(this consumer understands up to {spec.version})"
        )
    if head.type != spec.message_type:
        raise SchemaError(f"unexpected type {head.type!r} on {spec.name} ({spec.message_type})")
    try:
        return envelope_model(spec.payload).model_validate_json(raw)
    except ValidationError as exc:
        raise SchemaError(f"invalid {head.type}: {_first_error(exc)}") from exc


def salvage(spec: TopicSpec, raw: bytes | None, key: bytes | None) -> Envelope[Any] | None:
    """What can still be read of a message that does not decode, built without validation, so
    that its request can be failed where its author looks (the request log, a reply, a
    notification). Its request id is the envelope's, else the record's key (requests are keyed
    by it); None when neither is there. Only flat fields of the payload are kept (a nested one
    may be what broke the decoder); a missing one reads as None.

    Never pass the result to business logic: it is for failure hooks, which must not raise.
    """
    data: Any = None
    if raw is not None and not too_deep(raw):
        with contextlib.suppress(ValueError):
            data = json.loads(raw)
    head: dict[str, Any] = data if isinstance(data, dict) else {}
    rid = head.get("id")
    if not (isinstance(rid, str) and _SAFE_ID.fullmatch(rid)):
        rid = key.decode(errors="replace") if key else None
    if not rid or not _SAFE_ID.fullmatch(rid):
        return None
    raw_payload = head.get("payload")
    body: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
    fields: dict[str, Any] = dict.fromkeys(spec.payload.model_fields)
    fields.update(
        (k, v) for k, v in body.items() if k in fields and isinstance(v, str | int | float | bool)
    )
    user = head.get("user") if isinstance(head.get("user"), str) else None
    created = head.get("created_at")
    try:
        created_at = datetime.fromisoformat(created) if isinstance(created, str) else utcnow()
    except ValueError:
        created_at = utcnow()
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    raw_trace = head.get("trace")
    trace: dict[str, Any] = raw_trace if isinstance(raw_trace, dict) else {}
    return envelope_model(spec.payload).model_construct(
        id=rid,
        type=spec.message_type,
        schema_version=spec.version,
        created_at=created_at,
        user=user,
        trace={k: v for k, v in trace.items() if isinstance(v, str)},
        payload=spec.payload.model_construct(**fields),
    )


#: What a request id may look like (the same rule as the HTTP edge's correlation ids).
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def too_deep(raw: bytes) -> bool:
    """True when a message nests deeper than any envelope may: checked before a decoder
    recurses. Counting brackets (fast, in C) rules out nearly every message at once."""
    if raw.count(b"{") + raw.count(b"[") <= ENVELOPE_DEPTH:
        return False
    return raw_depth(raw, ENVELOPE_DEPTH) > ENVELOPE_DEPTH


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"
