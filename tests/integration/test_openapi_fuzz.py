"""Property-based fuzzing of ingest's OpenAPI spec (schemathesis) against a running ingest on
real Kafka and FerretDB: no input, valid or not, gets a 5xx, and every documented response body
matches its schema. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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
