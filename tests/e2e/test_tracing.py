"""One trace per request, across HTTP, Kafka, the workers and their calls (runtime/tracing.py),
recorded by the OpenTelemetry SDK's in-memory exporter while real ingest, Kafka, workers, the
ClearML simulator and a serving node run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from runtime import tracing
from runtime.logs import ContextFilter
from serving_node.testing import RunningNode
from tests.conftest import Bus
from tests.e2e.test_ondemand_path import FEATURES, register, router
from tests.fixtures import Worker
from tests.support import Issuer, eventually


def _hex(value: int) -> str:
    return format(value, "032x")


def tree(spans: Sequence[ReadableSpan], trace_id: int) -> list[tuple[int, ReadableSpan]]:
    """The spans of one trace, depth-first from its root, with their depth."""
    mine = [s for s in spans if s.context is not None and s.context.trace_id == trace_id]
    children: dict[int | None, list[ReadableSpan]] = {}
    for s in mine:
        children.setdefault(s.parent.span_id if s.parent else None, []).append(s)
    out: list[tuple[int, ReadableSpan]] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda s: s.start_time or 0):
            out.append((depth, s))
            assert s.context is not None
            walk(s.context.span_id, depth + 1)

    walk(None, 0)
    assert len(out) == len(mine), "every span of the trace hangs from its root"
    return out


def text(nodes: list[tuple[int, ReadableSpan]]) -> str:
    """The tree as the closing note shows it: name, kind, service, duration."""
    lines = []
    for depth, s in nodes:
        service = s.resource.attributes.get("service.name", "?")
        took = ((s.end_time or 0) - (s.start_time or 0)) / 1e6
        kind = s.kind.name
        lines.append(f"{'  ' * depth}{s.name}  [{kind}, {service}, {took:.2f} ms]")
    return "\n".join(lines)


def _shape(nodes: list[tuple[int, ReadableSpan]], prefix: str) -> list[tuple[int, str, SpanKind]]:
    """The tree with the test's topic prefix taken out of span names."""
    return [(d, s.name.replace(prefix, ""), s.kind) for d, s in nodes]


def _root(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    roots = [s for s in spans if s.name == name and s.kind == SpanKind.SERVER]
    assert len(roots) == 1, [s.name for s in spans]
    return roots[0]


@pytest.fixture
def traced(caplog: pytest.LogCaptureFixture) -> Any:
    """Tracing on into memory, and log records stamped as a service's handler stamps them."""
    caplog.set_level(logging.DEBUG, logger="runtime.consumer")
    caplog.handler.addFilter(ContextFilter())
    with tracing.recording() as exporter:
        yield exporter


async def test_an_ondemand_call_is_one_trace_from_http_through_kafka_to_the_model_and_back(
    bus: Bus,
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    node: RunningNode,
    traced: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    machine_id = await register(ingest, issuer, node)
    headers = {"Authorization": f"Bearer {issuer.token()}"}
    async with router(bus):
        answer = await ingest.post(
            "/v1/ondemand",
            json={"machine_id": machine_id, "endpoint": "parking_free_slots", "input": FEATURES},
            headers=headers,
        )
        assert answer.status_code == 200, answer.text

        async def consumed() -> list[ReadableSpan] | None:
            spans = list(traced.get_finished_spans())
            done = any(s.kind == SpanKind.CONSUMER for s in spans)
            return spans if done else None

        spans = await eventually(consumed, what="the router's span")
    root = _root(spans, "POST /v1/ondemand")
    assert root.context is not None
    nodes = tree(spans, root.context.trace_id)
    print("\n" + text(nodes))  # noqa: T201 - the trace as text, for the closing note
    shape = _shape(nodes, bus.topic_prefix)
    assert shape[:4] == [
        (0, "POST /v1/ondemand", SpanKind.SERVER),
        (1, "publish mlbus.requests.inference", SpanKind.PRODUCER),
        (2, "process mlbus.requests.inference", SpanKind.CONSUMER),
        (3, "model parking_free_slots", SpanKind.CLIENT),
    ]
    assert (3, "publish mlbus.replies.ingest-test", SpanKind.PRODUCER) in shape
    assert root.attributes is not None
    assert root.attributes["http.response.status_code"] == 200
    rid = answer.json()["request_id"]
    assert root.attributes["mlbus.request_id"] == rid
    # the router's log lines for this request carry its trace id
    handled = [r for r in caplog.records if getattr(r, "request_id", None) == rid]
    assert handled
    assert {getattr(r, "trace_id", None) for r in handled} == {_hex(root.context.trace_id)}


async def test_an_enqueue_is_one_trace_to_clearml_and_admins_see_its_id(
    ingest: httpx.AsyncClient,
    issuer: Issuer,
    enqueuer: Worker,
    parking_task_id: str,
    bus: Bus,
    traced: Any,
) -> None:
    accepted = await ingest.post(
        "/v1/enqueue",
        json={"task_id": parking_task_id, "input": {"lr": 0.05}},
        headers={"Authorization": f"Bearer {issuer.token('alice')}"},
    )
    assert accepted.status_code == 202, accepted.text
    rid = accepted.json()["request_id"]
    admin = {"Authorization": f"Bearer {issuer.token('admin', ['RootAdmin'])}"}

    async def queued() -> dict[str, Any] | None:
        status = await ingest.get(f"/v1/requests/{rid}", headers=admin)
        body: dict[str, Any] = status.json()
        return body if body["status"] not in ("accepted",) else None

    status = await eventually(queued, what="the enqueuer to record the request")

    async def handled() -> list[ReadableSpan] | None:
        spans = list(traced.get_finished_spans())
        done = any(s.kind == SpanKind.CONSUMER and "requests.enqueue" in s.name for s in spans)
        return spans if done else None

    spans = await eventually(handled, what="the enqueuer's span")
    root = _root(spans, "POST /v1/enqueue")
    assert root.context is not None
    assert status["admin"]["trace_id"] == _hex(root.context.trace_id)
    nodes = tree(spans, root.context.trace_id)
    print("\n" + text(nodes))  # noqa: T201 - the trace as text, for the closing note
    shape = _shape(nodes, bus.topic_prefix)
    assert shape[:3] == [
        (0, "POST /v1/enqueue", SpanKind.SERVER),
        (1, "publish mlbus.requests.enqueue", SpanKind.PRODUCER),
        (2, "process mlbus.requests.enqueue", SpanKind.CONSUMER),
    ]
    names = {name for depth, name, _ in shape if depth == 3}
    assert {"clearml tasks.clone", "clearml tasks.enqueue"} <= names
    assert all(kind == SpanKind.CLIENT for _, name, kind in shape if name.startswith("clearml"))
    # a user's own status does not show it
    own = await ingest.get(
        f"/v1/requests/{rid}", headers={"Authorization": f"Bearer {issuer.token('alice')}"}
    )
    assert own.json().get("admin") is None
