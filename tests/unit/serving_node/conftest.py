"""Fixtures for the serving node's unit tests: one fitted model, a fresh app and client per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from serving_node import NodeConfig, ServingNodeApp, create_app
from serving_node.endpoints import EchoEndpoint, EndpointRegistry, ParkingEndpoint
from serving_node.parking_model import ParkingModel, train_parking_model


@pytest.fixture(scope="session")
def parking_model() -> ParkingModel:
    return train_parking_model()[0]


@pytest.fixture
def app(parking_model: ParkingModel) -> ServingNodeApp:
    registry = EndpointRegistry([ParkingEndpoint(parking_model), EchoEndpoint()])
    return create_app(NodeConfig(instance_id="node-under-test"), registry)


@pytest.fixture
async def client(app: ServingNodeApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        yield client
