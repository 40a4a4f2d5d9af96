"""The served endpoints, called directly: output shape, bounds and input validation."""

from __future__ import annotations

from typing import Any

import pytest

from serving_node.endpoints import EchoEndpoint, EndpointRegistry, ParkingEndpoint
from serving_node.errors import EndpointNotFoundError, InvalidInputError
from serving_node.parking_model import ParkingModel

CAR_PARK = {
    "capacity": 300,
    "hour": 18,
    "weekday": 2,
    "temperature_c": 12.5,
    "rain_mm": 1.2,
    "event_nearby": False,
}


@pytest.fixture
def parking(parking_model: ParkingModel) -> ParkingEndpoint:
    return ParkingEndpoint(parking_model)


def test_single_prediction_shape_and_bounds(parking: ParkingEndpoint) -> None:
    out = parking.predict(CAR_PARK)
    assert set(out) == {"free_slots", "occupancy", "capacity", "model", "version"}
    assert isinstance(out["free_slots"], int)
    assert 0 <= out["free_slots"] <= 300
    assert 0.0 <= out["occupancy"] <= 1.0
    assert out["model"] == "parking_free_slots"
    assert out["version"] == "1"


def test_instances_give_one_prediction_each(parking: ParkingEndpoint) -> None:
    night = {**CAR_PARK, "hour": 3}
    out = parking.predict({"instances": [CAR_PARK, night]})
    assert [p["capacity"] for p in out["predictions"]] == [300, 300]
    assert out["predictions"][1]["free_slots"] > out["predictions"][0]["free_slots"]
    assert out["model"] == "parking_free_slots"


def test_integer_temperature_and_rain_are_accepted(parking: ParkingEndpoint) -> None:
    out = parking.predict({**CAR_PARK, "temperature_c": 20, "rain_mm": 0})
    assert 0 <= out["free_slots"] <= 300


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({k: v for k, v in CAR_PARK.items() if k != "hour"}, "missing feature: hour"),
        ({**CAR_PARK, "hour": 24}, "feature 'hour' must be an integer in 0..23"),
        ({**CAR_PARK, "hour": "18"}, "feature 'hour' must be an integer"),
        ({**CAR_PARK, "hour": 18.0}, "feature 'hour' must be an integer"),
        ({**CAR_PARK, "weekday": 7}, "feature 'weekday' must be an integer in 0..6"),
        ({**CAR_PARK, "capacity": 0}, "feature 'capacity' must be an integer"),
        ({**CAR_PARK, "capacity": True}, "feature 'capacity' must be an integer"),
        ({**CAR_PARK, "rain_mm": -1}, "feature 'rain_mm' must be a number >= 0"),
        ({**CAR_PARK, "temperature_c": None}, "feature 'temperature_c' must be a number"),
        ({**CAR_PARK, "event_nearby": 1}, "feature 'event_nearby' must be a boolean"),
        ([CAR_PARK], "request body must be a JSON object"),
        ({"instances": []}, "'instances' must be a non-empty list"),
        ({"instances": [CAR_PARK, 3]}, "instances[1]: must be a JSON object"),
        ({"instances": [CAR_PARK, {**CAR_PARK, "hour": -1}]}, "instances[1]: feature 'hour'"),
    ],
)
def test_bad_input_names_the_problem(parking: ParkingEndpoint, body: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parking.predict(body)
    assert caught.value.status == 422
    assert message in caught.value.detail


def test_echo_returns_the_body() -> None:
    assert EchoEndpoint().predict({"a": [1, 2]}) == {"echo": {"a": [1, 2]}}


def test_registry_resolves_names_and_versions(parking: ParkingEndpoint) -> None:
    registry = EndpointRegistry([parking, EchoEndpoint()])
    assert registry.resolve("parking_free_slots") is parking
    assert registry.resolve("parking_free_slots/1") is parking
    assert registry.names() == ["parking_free_slots", "echo"]
    with pytest.raises(EndpointNotFoundError) as caught:
        registry.resolve("parking_free_slots/2")
    assert caught.value.status == 404
    assert caught.value.detail.endswith("endpoint was not found: parking_free_slots/2")
