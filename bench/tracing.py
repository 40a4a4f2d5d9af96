"""The CPU the tracing hooks of one on-demand request cost, off and on, in-process.

The hooks of one request: ingest's HTTP span and the trace id read for the envelope, the
publish span and its headers, the router's consume span from those headers, the model call
span, the reply's publish span and headers. Off, each is one check of a module global; on,
each makes an SDK span (batch processor, an exporter that drops), as in a service.

    .venv/bin/python -m bench.tracing [--requests 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.harness import say, write_report
from runtime import tracing


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def one_request() -> None:
    """The tracing calls mlbus makes for one on-demand request."""
    with tracing.span("POST /v1/ondemand", kind=tracing.SERVER):
        tracing.trace_id()
        with tracing.span("publish mlbus.requests.inference", kind=tracing.PRODUCER):
            headers = tracing.inject()
    with tracing.span(
        "process mlbus.requests.inference", kind=tracing.CONSUMER, parent=tracing.extract(headers)
    ):
        with tracing.span("model parking_free_slots", kind=tracing.CLIENT):
            pass
        with tracing.span("publish mlbus.replies.ingest", kind=tracing.PRODUCER):
            tracing.inject()


def cpu_us(requests: int) -> float:
    """CPU microseconds per request."""
    started = time.process_time()
    for _ in range(requests):
        one_request()
    return (time.process_time() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    off = cpu_us(args.requests)
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop()))
    tracing.use(provider)
    try:
        on = cpu_us(max(1, args.requests // 4))
    finally:
        tracing.use(None)
    say(f"tracing off: {off:.2f} us of CPU per on-demand request (5 hooks)")
    say(f"tracing on:  {on:.1f} us of CPU per on-demand request (5 spans)")
    say(f"raw numbers: {write_report('tracing', {'off_us': off, 'on_us': on})}")


if __name__ == "__main__":
    main()
