"""Tracing off costs nothing and carries nothing; on, the context rides in Kafka headers; log
lines are JSON with the request and trace ids; a worker answers its probes."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from opentelemetry.trace import SpanKind

from runtime import metrics, tracing
from runtime.logs import ContextFilter, JsonLines, request_id_var


def test_off_every_helper_is_a_no_op() -> None:
    assert not tracing.on()
    with tracing.span("x", kind=tracing.SERVER) as span:
        assert span is None
        assert tracing.trace_id() is None
        assert tracing.inject() is None
        assert tracing.inject([("a", b"1")]) == [("a", b"1")]
        assert (
            tracing.extract([("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")])
            is None
        )
    assert tracing.span("y") is tracing.span("z")  # one shared null context, nothing made


def test_the_context_rides_in_message_headers() -> None:
    with tracing.recording() as exporter:
        with tracing.span("publish", kind=tracing.PRODUCER) as producer:
            assert producer is not None
            headers = tracing.inject([("other", b"kept")])
            sent_trace = tracing.trace_id()
        assert headers is not None
        assert ("other", b"kept") in headers
        parent = tracing.extract(headers)
        with tracing.span("process", kind=tracing.CONSUMER, parent=parent):
            assert tracing.trace_id() == sent_trace
    finished = {s.name: s for s in exporter.get_finished_spans()}
    consumer, published = finished["process"], finished["publish"]
    assert consumer.kind == SpanKind.CONSUMER
    assert consumer.parent is not None
    assert published.context is not None
    assert consumer.parent.span_id == published.context.span_id
    assert not tracing.on()  # off again after the block


def test_a_failed_block_marks_its_span() -> None:
    with tracing.recording() as exporter, tracing.span("call") as span:
        tracing.failed(span, TimeoutError("slow"))
    (done,) = exporter.get_finished_spans()
    assert done.status.status_code.name == "ERROR"
    assert "TimeoutError" in (done.status.description or "")


def _json_line(**context: Any) -> dict[str, Any]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonLines("enqueuer"))
    logger = logging.getLogger("test.jsonlines")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        token = request_id_var.set(context.get("request_id", "-"))
        try:
            if context.get("traced"):
                with tracing.recording(), tracing.span("work"):
                    logger.warning("clone %s failed", "c1")
                    trace_id = tracing.trace_id()
            else:
                logger.warning("clone %s failed", "c1")
                trace_id = "-"
        finally:
            request_id_var.reset(token)
    finally:
        logger.removeHandler(handler)
    line: dict[str, Any] = json.loads(stream.getvalue())
    line["expected_trace"] = trace_id
    return line


def test_json_log_lines_carry_the_request_and_trace_ids() -> None:
    line = _json_line(request_id="5f0c8a9e2b7d4c1f9a3e6b8d0c2f4a61", traced=True)
    assert line["message"] == "clone c1 failed"
    assert line["level"] == "WARNING"
    assert line["service"] == "enqueuer"
    assert line["request_id"] == "5f0c8a9e2b7d4c1f9a3e6b8d0c2f4a61"
    assert len(line["trace_id"]) == 32
    assert line["trace_id"] == line["expected_trace"]
    assert line["ts"].endswith("Z")
    untraced = _json_line()
    assert untraced["trace_id"] == "-"
    assert untraced["request_id"] == "-"


def _get(path: str) -> tuple[str, bytes]:
    seen: list[str] = []
    body = b"".join(
        metrics.probes_app(
            {"PATH_INFO": path, "REQUEST_METHOD": "GET"}, lambda s, h: seen.append(s)
        )
    )
    return seen[0], body


def test_a_worker_is_ready_while_its_loop_runs() -> None:
    assert _get("/healthz")[0].startswith("200")
    # One process runs many services' loops in the test suite; start from none.
    metrics.READY.clear()
    metrics.ready("probe-test", False)
    assert _get("/readyz")[0].startswith("503")
    metrics.ready("probe-test", True)
    try:
        assert _get("/readyz")[0].startswith("200")
        status, body = _get("/metrics")
        assert status.startswith("200")
        assert b'mlbus_ready{service="probe-test"} 1.0' in body
    finally:
        metrics.ready("probe-test", False)


def test_an_unsampled_trace_is_carried_but_not_recorded() -> None:
    tracing.setup("t", "http://127.0.0.1:9/v1/traces", sample_ratio=0.0)  # never contacted
    try:
        with tracing.span("POST /v1/ondemand", kind=tracing.SERVER) as span:
            assert span is not None
            assert not span.is_recording()
            headers = tracing.inject()
        assert headers is not None
        (name, value), *_ = headers
        assert name == "traceparent"
        assert int(value[-2:], 16) & 1 == 0  # not sampled: the workers record nothing either
        with tracing.span("process", parent=tracing.extract(headers)) as child:
            assert child is not None
            assert not child.is_recording()
    finally:
        tracing.shutdown()
