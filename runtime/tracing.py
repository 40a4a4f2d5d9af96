"""Tracing: one OpenTelemetry trace per request, across HTTP, Kafka, the workers and the calls
they make. Off unless `MLBUS_OTLP_ENDPOINT` is set, and then nothing here does any work: every
helper checks one module global and returns (bench.ondemand measures it).

Where the spans come from (so that services need no tracing code of their own):

- `runtime.http.EdgeMiddleware`: the HTTP server span of each request (SERVER);
- `runtime.kafka.TracedProducer` and `runtime.rdkafka.RdProducer`: a PRODUCER span per message
  sent and awaited, and the W3C `traceparent` of the current span in the message's headers
  (every message sent inside a traced operation carries it);
- `runtime.consumer.ConsumerLoop` (and the pipelined loop): a CONSUMER span per message
  handled, the child of the span that produced it;
- `runtime.clearml.ClearMLClient` and the router's model client: a CLIENT span per call.

The trace id also goes where people look: every log line made inside a span
(`runtime.logs`), and the request's `trace_id` in the envelope (`Envelope.trace`), which the
enqueuer keeps in the request's log for `GET /v1/requests/{id}` (admins).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "CLIENT",
    "CONSUMER",
    "INTERNAL",
    "PRODUCER",
    "SERVER",
    "Status",
    "StatusCode",
    "current",
    "extract",
    "extract_http",
    "failed",
    "inject",
    "on",
    "recording",
    "setup",
    "shutdown",
    "span",
    "trace_id",
    "use",
]

log = logging.getLogger(__name__)

SERVER, CLIENT = SpanKind.SERVER, SpanKind.CLIENT
PRODUCER, CONSUMER, INTERNAL = SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL
TRACEPARENT = "traceparent"
Headers = Sequence[tuple[str, Any]]  # (name, bytes); librdkafka may give str or None

_PROPAGATOR = TraceContextTextMapPropagator()
_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()
_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None


def on() -> bool:
    """True when spans are recorded."""
    return _tracer is not None


def setup(service: str, endpoint: str) -> None:
    """Export this process's spans to `endpoint` (OTLP over HTTP), batched in the background;
    an empty endpoint leaves tracing off."""
    if not endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = _new_provider(service)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    use(provider)
    log.info("tracing on: spans exported to %s", endpoint)


def _new_provider(service: str) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider(resource=Resource.create({"service.name": f"mlbus-{service}"}))


def use(provider: TracerProvider | None) -> None:
    """Record spans with `provider` (tests pass one with an in-memory exporter); None: off."""
    global _tracer, _provider  # noqa: PLW0603 - the one switch every helper reads
    if _provider is not None and provider is not _provider:
        _provider.shutdown()  # flushes what the old one batched
    _provider = provider
    _tracer = provider.get_tracer("mlbus") if provider is not None else None


def shutdown() -> None:
    """Flush and stop (at process exit)."""
    use(None)


def span(
    name: str,
    *,
    kind: SpanKind = INTERNAL,
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> contextlib.AbstractContextManager[trace.Span | None]:
    """A span made current for the `with` block (None, and no work, when tracing is off).
    An exception leaving the block marks the span as an error."""
    if _tracer is None:
        return _NOOP
    return _tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes)


def failed(current: trace.Span | None, exc: BaseException) -> None:
    """Mark a span as failed by an error that is handled (so the block does not see it)."""
    if current is not None:
        current.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def current() -> trace.Span | None:
    """The current span (None with tracing off)."""
    return trace.get_current_span() if _tracer is not None else None


def inject(headers: Headers | None = None) -> list[tuple[str, bytes]] | None:
    """`headers` plus the current span's `traceparent`, for a Kafka message."""
    if _tracer is None:
        return list(headers) if headers is not None else None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    out = [(k, v) for k, v in headers or () if k != TRACEPARENT]
    out += [(k, v.encode()) for k, v in carrier.items()]
    return out


def extract(headers: Headers | None) -> otel_context.Context | None:
    """The context a message's headers carry (None: none, or tracing off)."""
    if _tracer is None or not headers:
        return None
    carrier = {
        k: v.decode("latin-1") if isinstance(v, bytes) else str(v)
        for k, v in headers
        if k == TRACEPARENT and v is not None
    }
    return _PROPAGATOR.extract(carrier) if carrier else None


def extract_http(headers: Mapping[bytes, bytes]) -> otel_context.Context | None:
    """The context an HTTP client sent in its `traceparent` header, if any."""
    if _tracer is None:
        return None
    value = headers.get(TRACEPARENT.encode())
    return _PROPAGATOR.extract({TRACEPARENT: value.decode("latin-1")}) if value else None


def trace_id() -> str | None:
    """The current trace's id (32 hex digits), or None outside a span or with tracing off."""
    if _tracer is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@contextlib.contextmanager
def recording(service: str = "test") -> Iterator[Any]:
    """Tracing on for the block, into an in-memory exporter that the block receives (tests)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = _new_provider(service)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use(provider)
    try:
        yield exporter
    finally:
        use(None)
