"""The endpoints a node serves: the parking model, an echo, and the registry that finds them."""

from __future__ import annotations

from typing import Any, Protocol

from serving_node.errors import EndpointNotFoundError, InvalidInputError
from serving_node.parking_model import ParkingModel, train_parking_model


class Endpoint(Protocol):
    """A served model: a name, a version and a synchronous, cheap ``predict``."""

    name: str
    version: str

    def predict(self, body: Any) -> Any:
        """Answer one request body; raise ``InvalidInputError`` on bad input."""
        ...


def _feature(instance: dict[str, Any], name: str) -> Any:
    try:
        return instance[name]
    except KeyError:
        raise InvalidInputError(f"missing feature: {name}") from None


def _int_feature(instance: dict[str, Any], name: str, low: int, high: int) -> int:
    value = _feature(instance, name)
    if type(value) is not int or not low <= value <= high:
        raise InvalidInputError(
            f"feature '{name}' must be an integer in {low}..{high}, got {value!r}"
        )
    return value


def _float_feature(instance: dict[str, Any], name: str, low: float | None = None) -> float:
    value = _feature(instance, name)
    if type(value) not in (int, float) or (low is not None and value < low):
        bound = "" if low is None else f" >= {low:g}"
        raise InvalidInputError(f"feature '{name}' must be a number{bound}, got {value!r}")
    return float(value)


def _bool_feature(instance: dict[str, Any], name: str) -> bool:
    value = _feature(instance, name)
    if type(value) is not bool:
        raise InvalidInputError(f"feature '{name}' must be a boolean, got {value!r}")
    return value


class ParkingEndpoint:
    """``parking_free_slots``: free slots of a car park from time, weather and events."""

    name = "parking_free_slots"
    version = "1"

    def __init__(self, model: ParkingModel | None = None) -> None:
        self.model = model if model is not None else train_parking_model()[0]

    def predict(self, body: Any) -> Any:
        """One object in, one prediction out; ``{"instances": [...]}`` in, ``predictions`` out."""
        if not isinstance(body, dict):
            raise InvalidInputError("request body must be a JSON object")
        if "instances" not in body:
            return {**self._predict_one(body), "model": self.name, "version": self.version}
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise InvalidInputError("'instances' must be a non-empty list of objects")
        predictions = []
        for i, instance in enumerate(instances):
            if not isinstance(instance, dict):
                raise InvalidInputError(f"instances[{i}]: must be a JSON object")
            try:
                predictions.append(self._predict_one(instance))
            except InvalidInputError as exc:
                raise InvalidInputError(f"instances[{i}]: {exc.detail}") from None
        return {"predictions": predictions, "model": self.name, "version": self.version}

    def _predict_one(self, instance: dict[str, Any]) -> dict[str, Any]:
        capacity = _int_feature(instance, "capacity", 1, 1_000_000)
        occupancy = self.model.predict_occupancy(
            _int_feature(instance, "hour", 0, 23),
            _int_feature(instance, "weekday", 0, 6),
            _float_feature(instance, "temperature_c"),
            _float_feature(instance, "rain_mm", low=0.0),
            _bool_feature(instance, "event_nearby"),
        )
        return {
            "free_slots": self.model.free_slots(capacity, occupancy),
            "occupancy": round(occupancy, 4),
            "capacity": capacity,
        }


class EchoEndpoint:
    """``echo``: answers ``{"echo": <body>}``, for plumbing tests."""

    name = "echo"
    version = "1"

    def predict(self, body: Any) -> Any:
        """Return the body unchanged under ``echo``."""
        return {"echo": body}


class EndpointRegistry:
    """Endpoints by ClearML Serving key: ``name`` (latest version) and ``name/version``."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.endpoints = list(endpoints)
        self._by_key: dict[str, Endpoint] = {}
        for endpoint in self.endpoints:
            self._by_key[endpoint.name] = endpoint
            self._by_key[f"{endpoint.name}/{endpoint.version}"] = endpoint

    def resolve(self, key: str) -> Endpoint:
        """The endpoint for ``name`` or ``name/version``; ``EndpointNotFoundError`` otherwise."""
        endpoint = self._by_key.get(key)
        if endpoint is None:
            raise EndpointNotFoundError(key)
        return endpoint

    def names(self) -> list[str]:
        """Endpoint names, in registration order."""
        return [e.name for e in self.endpoints]


def default_registry() -> EndpointRegistry:
    """The demo node's endpoints: the parking model (fitted now, well under a second) and echo."""
    return EndpointRegistry([ParkingEndpoint(), EchoEndpoint()])
