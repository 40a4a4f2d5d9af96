"""Encoding and decoding envelopes to and from Kafka bytes.

Decoding is strict about what matters (a known major version, a payload that validates) and
lenient about the rest (unknown fields are ignored), so additive changes never break a consumer.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from pydantic import ValidationError

from schemas.base import Envelope, Model, RawEnvelope
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


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"
