"""Property-based fuzzing of ingest's OpenAPI spec (schemathesis) against a running ingest on
real Kafka and FerretDB: no input, valid or not, gets a 5xx, and every documented response body
matches its schema; every operation with a JSON body is also sent JSON no worker could carry
(deep, huge, non-finite, too wide). Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from services.ingest.app import create_app
from tests.conftest import Bus
from tests.fixtures import ingest_settings
from tests.support import Issuer, ThreadedServer

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def ingest_url(bus: Bus, issuer: Issuer) -> Iterator[str]:
    server = ThreadedServer(create_app(ingest_settings(bus, issuer)), "ingest").start()
    try:
        yield server.url
    finally:
        server.stop()


def test_no_input_gets_a_server_error_or_breaks_the_schema(ingest_url: str, issuer: Issuer) -> None:
    # The stream never ends by design; it has its own tests.
    schema = schemathesis.openapi.from_url(f"{ingest_url}/openapi.json").exclude(
        path="/v1/notifications/stream"
    )
    headers = {"Authorization": f"Bearer {issuer.token('fuzz-admin', ['RootAdmin'])}"}
    tried: list[str] = []
    calls = [0]
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the spec itself must load cleanly
        operation = result.ok()
        tried.append(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,  # the same cases every run: CI stays reproducible
        )
        def fuzz(case: schemathesis.Case[Any]) -> None:
            calls[0] += 1
            case.call_and_validate(
                headers=headers,
                checks=[not_a_server_error, response_schema_conformance],
                timeout=30,
            )

        fuzz()
    assert len(tried) >= 10, tried
    assert calls[0] >= 5 * len(tried), calls  # hypothesis really generated cases


#: JSON no worker could carry, as raw bytes: deep, huge (sent chunked), non-finite, too wide.
HOSTILE = {
    "deep_200": b'{"input": {"x": ' + b"[" * 200 + b"]" * 200 + b"}}",
    "deep_10000": b'{"input": {"x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
    "nan": b'{"input": {"x": NaN}}',
    "infinity": b'{"input": {"x": -Infinity}}',
    "overflow": b'{"input": {"x": 1e400}}',
    "int_65_bits": b'{"input": {"x": 36893488147419103232}}',
    "int_5000_digits": b'{"input": {"x": ' + b"7" * 5000 + b"}}",
}


def test_every_json_operation_refuses_hostile_json_with_the_error_shape(
    ingest_url: str, issuer: Issuer
) -> None:
    """Each operation that takes a JSON body, sent each hostile body: a 4xx with the error shape
    (413 `body_too_large` or 422 `invalid_request`), never a 5xx or another code."""
    schema = schemathesis.openapi.from_url(f"{ingest_url}/openapi.json")
    headers = {
        "Authorization": f"Bearer {issuer.token('fuzz-admin', ['RootAdmin'])}",
        "content-type": "application/json",
    }
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    with_body = [op for op in operations if op.body]
    assert len(with_body) >= 5, [op.label for op in operations]

    def huge() -> Iterator[bytes]:
        yield b'{"input": {"x": "'
        for _ in range(1100):
            yield b"x" * 1024
        yield b'"}}'

    with httpx.Client(base_url=ingest_url, timeout=30) as client:
        for op in with_body:
            path = re.sub(r"\{[^}]+\}", "0123456789abcdef", op.path)
            sent: list[tuple[str, bytes | Iterator[bytes]]] = [
                *HOSTILE.items(),
                ("huge_chunked", huge()),
            ]
            for name, body in sent:
                response = client.request(op.method.upper(), path, content=body, headers=headers)
                expected = 413 if name == "huge_chunked" else 422
                assert response.status_code == expected, (op.label, name, response.text[:200])
                shape = response.json()
                assert shape["code"] == ("body_too_large" if expected == 413 else "invalid_request")
                assert shape["request_id"] == response.headers["x-request-id"]
