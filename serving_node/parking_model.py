"""The parking model: a synthetic car-park data set and a numpy ridge regression fitted on it.

The data generator stands in for Snap4City's car-park sensors: occupancy follows a daily curve
(busier and earlier on weekdays), and rain, uncomfortable temperatures and nearby events raise it.
The regression predicts occupancy (0..1) from engineered features; free slots follow from the
capacity. After fitting, the model is *compiled*: everything that depends only on (event, weekday,
hour) is folded into a 2 x 7 x 24 lookup table, so one prediction is a table read plus three
multiply-adds in plain Python, with no numpy call on the serving path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_HARMONICS = (1, 2, 3)
_WEEKEND_FROM = 5  # weekday 5 and 6 (Saturday, Sunday) are the weekend


@dataclass(frozen=True)
class ParkingDataset:
    """Column-oriented parking observations; every array has one entry per observation."""

    capacity: IntArray
    hour: IntArray
    weekday: IntArray
    temperature_c: FloatArray
    rain_mm: FloatArray
    event_nearby: npt.NDArray[np.bool_]
    occupancy: FloatArray

    def __len__(self) -> int:
        return len(self.hour)

    @property
    def free_slots(self) -> IntArray:
        """Observed free slots: the unoccupied share of the capacity."""
        return np.rint(self.capacity * (1.0 - self.occupancy)).astype(np.int64)

    def take(self, index: Any) -> ParkingDataset:
        """A subset of the rows selected by a numpy index (slice, mask or integer array)."""
        return ParkingDataset(
            capacity=self.capacity[index],
            hour=self.hour[index],
            weekday=self.weekday[index],
            temperature_c=self.temperature_c[index],
            rain_mm=self.rain_mm[index],
            event_nearby=self.event_nearby[index],
            occupancy=self.occupancy[index],
        )


def _bump(hour: FloatArray, centre: float, width: float) -> FloatArray:
    """A Gaussian bump on the 24-hour circle (23:00 is one hour from midnight)."""
    distance = np.abs(hour - centre)
    distance = np.minimum(distance, 24.0 - distance)
    return np.asarray(np.exp(-0.5 * (distance / width) ** 2), dtype=np.float64)


def true_occupancy(
    hour: IntArray,
    weekday: IntArray,
    temperature_c: FloatArray,
    rain_mm: FloatArray,
    event_nearby: npt.NDArray[np.bool_],
) -> FloatArray:
    """The noiseless occupancy curve the synthetic data set is drawn from."""
    h = hour.astype(np.float64)
    weekend = weekday >= _WEEKEND_FROM
    weekday_curve = 0.12 + 0.68 * _bump(h, 13.0, 4.5)
    weekend_curve = 0.08 + 0.52 * _bump(h, 15.5, 4.0)
    occupancy = np.where(weekend, weekend_curve, weekday_curve)
    occupancy += 0.05 * np.log1p(rain_mm)
    occupancy += 0.04 * ((temperature_c - 18.0) / 10.0) ** 2
    occupancy += event_nearby * (0.08 + 0.15 * _bump(h, 20.0, 3.0))
    return np.asarray(np.clip(occupancy, 0.0, 1.0), dtype=np.float64)


def generate_dataset(n: int = 24_000, seed: int = 20240917) -> ParkingDataset:
    """Draw ``n`` deterministic observations (same ``seed``, same data) with Gaussian noise."""
    rng = np.random.default_rng(seed)
    hour = rng.integers(0, 24, size=n)
    weekday = rng.integers(0, 7, size=n)
    temperature_c = rng.normal(15.0, 8.0, size=n)
    raining = rng.random(n) < 0.3
    rain_mm = np.where(raining, rng.exponential(4.0, size=n), 0.0)
    event_nearby = rng.random(n) < 0.1
    clean = true_occupancy(hour, weekday, temperature_c, rain_mm, event_nearby)
    occupancy = np.clip(clean + rng.normal(0.0, 0.03, size=n), 0.0, 1.0)
    return ParkingDataset(
        capacity=rng.integers(40, 1200, size=n),
        hour=hour,
        weekday=weekday,
        temperature_c=temperature_c,
        rain_mm=rain_mm,
        event_nearby=event_nearby,
        occupancy=occupancy,
    )


def split(
    data: ParkingDataset, test_fraction: float = 0.2
) -> tuple[ParkingDataset, ParkingDataset]:
    """Train/test split; rows are i.i.d., so the tail is as good a held-out set as any."""
    cut = int(len(data) * (1.0 - test_fraction))
    return data.take(slice(0, cut)), data.take(slice(cut, None))


def discrete_features(
    hour: IntArray, weekday: IntArray, event_nearby: npt.NDArray[np.bool_]
) -> FloatArray:
    """Features that depend only on (hour, weekday, event): hour harmonics, weekend, event."""
    angle = 2.0 * np.pi * hour.astype(np.float64) / 24.0
    weekend = (weekday >= _WEEKEND_FROM).astype(np.float64)
    event = event_nearby.astype(np.float64)
    harmonics = [f(k * angle) for k in _HARMONICS for f in (np.sin, np.cos)]
    columns = [*harmonics, weekend, *(weekend * col for col in harmonics)]
    columns += [event, event * np.sin(angle), event * np.cos(angle)]
    return np.column_stack(columns)


def continuous_features(
    temperature_c: Any, rain_mm: Any, log1p: Callable[[Any], Any] = np.log1p
) -> list[Any]:
    """Weather features; works on numpy arrays (training) and on floats with ``math.log1p``."""
    return [
        log1p(rain_mm),
        (temperature_c - 15.0) / 10.0,
        ((temperature_c - 18.0) / 10.0) ** 2,
    ]


def design_matrix(data: ParkingDataset) -> FloatArray:
    """The full feature matrix: discrete columns first, then the weather columns."""
    discrete = discrete_features(data.hour, data.weekday, data.event_nearby)
    weather = np.column_stack(continuous_features(data.temperature_c, data.rain_mm))
    return np.hstack([discrete, weather])


def fit_ridge(x: FloatArray, y: FloatArray, alpha: float = 1.0) -> tuple[FloatArray, float]:
    """Closed-form ridge on standardised columns, returned as raw-scale weights and intercept."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0.0] = 1.0
    z = (x - mean) / scale
    y_mean = float(y.mean())
    gram = z.T @ z + alpha * np.eye(z.shape[1])
    weights = np.linalg.solve(gram, z.T @ (y - y_mean)) / scale
    return weights, y_mean - float(mean @ weights)


def r2_score(y_true: FloatArray, y_pred: FloatArray) -> float:
    """Coefficient of determination."""
    residual = float(np.sum((y_true - y_pred) ** 2))
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    return 1.0 - residual / total


class ParkingModel:
    """A fitted, compiled parking-occupancy regressor."""

    def __init__(self, weights: FloatArray, intercept: float) -> None:
        self.weights = weights
        self.intercept = intercept
        n_discrete = weights.shape[0] - len(continuous_features(0.0, 0.0, math.log1p))
        self._weather_weights = [float(w) for w in weights[n_discrete:]]
        self._table = self._compile(weights[:n_discrete], intercept)

    @staticmethod
    def _compile(discrete_weights: FloatArray, intercept: float) -> list[float]:
        """Evaluate the discrete part for every (event, weekday, hour): a flat 336-entry table."""
        event, weekday, hour = np.meshgrid(
            np.array([False, True]), np.arange(7), np.arange(24), indexing="ij"
        )
        features = discrete_features(hour.ravel(), weekday.ravel(), event.ravel())
        return [float(v) for v in features @ discrete_weights + intercept]

    def predict_occupancy(
        self, hour: int, weekday: int, temperature_c: float, rain_mm: float, event: bool
    ) -> float:
        """Occupancy in [0, 1] for one car park; inputs are assumed already validated."""
        value = self._table[(168 if event else 0) + weekday * 24 + hour]
        weather = continuous_features(temperature_c, rain_mm, math.log1p)
        for w, f in zip(self._weather_weights, weather, strict=True):
            value += w * f
        return 0.0 if value < 0.0 else min(value, 1.0)

    def predict_batch(self, data: ParkingDataset) -> FloatArray:
        """Occupancy for every row of a data set, through the uncompiled numpy path."""
        raw = design_matrix(data) @ self.weights + self.intercept
        return np.asarray(np.clip(raw, 0.0, 1.0), dtype=np.float64)

    @staticmethod
    def free_slots(capacity: int, occupancy: float) -> int:
        """Free slots for a capacity and an occupancy, clipped to [0, capacity]."""
        return max(0, min(capacity, round(capacity * (1.0 - occupancy))))


def train_parking_model(
    n: int = 24_000, seed: int = 20240917, alpha: float = 1.0
) -> tuple[ParkingModel, float]:
    """Generate the data, fit on the training split; return the model and its held-out R²."""
    train, test = split(generate_dataset(n, seed))
    weights, intercept = fit_ridge(design_matrix(train), train.occupancy, alpha)
    model = ParkingModel(weights, intercept)
    return model, r2_score(test.occupancy, model.predict_batch(test))
