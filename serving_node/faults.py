"""Latency and fault knobs, global or per endpoint, changed at runtime without locks.

Overrides are kept as the fields a caller set; after every change the effective ``Faults`` of
each endpoint is resolved once (endpoint field, else global field, else default) and published
by swapping one dict, so the serving path does a single dict lookup and the knobs can be turned
from another thread (the test helper runs the node in one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Faults:
    """What a request to one endpoint suffers, in the order it is applied."""

    hang: bool = False
    hang_s: float = 3600.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    status_override: int | None = None
    error_rate: float = 0.0
    not_ready: bool = False

    @property
    def touches_requests(self) -> bool:
        """Whether serving a request has anything to do (``not_ready`` only affects probes)."""
        return (
            self.hang
            or self.latency_ms > 0
            or self.jitter_ms > 0
            or self.status_override is not None
            or self.error_rate > 0
        )


FAULT_FIELDS = tuple(f.name for f in fields(Faults))


class FaultPatch(BaseModel):
    """Body of ``POST /_node/faults``: set fields are changed, ``null`` resets one to default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str | None = Field(None, description="Endpoint name; omitted means global.")
    hang: bool | None = Field(None, description="Requests wait until cleared or hang_s.")
    hang_s: float | None = Field(None, gt=0, description="Longest hang, seconds.")
    latency_ms: float | None = Field(None, ge=0, description="Added fixed latency.")
    jitter_ms: float | None = Field(None, ge=0, description="Added uniform random latency.")
    status_override: int | None = Field(None, ge=400, le=599, description="Always answer this.")
    error_rate: float | None = Field(None, ge=0, le=1, description="Share answering 500.")
    not_ready: bool | None = Field(None, description="Readiness answers 503.")

    def changes(self) -> dict[str, Any]:
        """Fault fields the caller set, ``None`` meaning back to the default."""
        return {k: getattr(self, k) for k in self.model_fields_set if k in FAULT_FIELDS}


class FaultState:
    """The node's fault configuration: global overrides plus per-endpoint overrides."""

    def __init__(self, endpoints: list[str], initial: Faults | None = None) -> None:
        self._endpoints = list(endpoints)
        self._initial = initial or Faults()
        self._global: dict[str, Any] = {}
        self._per_endpoint: dict[str, dict[str, Any]] = {}
        self._effective: dict[str, Faults | None] = {}
        self.clear()

    def for_request(self, endpoint: str) -> Faults | None:
        """The faults a request to ``endpoint`` suffers, or None when there are none."""
        return self._effective.get(endpoint)

    def effective(self, endpoint: str | None = None) -> Faults:
        """Resolved faults for an endpoint, or the global ones."""
        values = {**self._global, **self._per_endpoint.get(endpoint or "", {})}
        return replace(Faults(), **values)

    def update(self, endpoint: str | None = None, **changes: Any) -> None:
        """Set fault fields globally or for one endpoint; ``None`` drops the override."""
        unknown = set(changes) - set(FAULT_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        target = self._global if endpoint is None else self._per_endpoint.setdefault(endpoint, {})
        for key, value in changes.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        self._publish()

    def apply(self, patch: FaultPatch) -> None:
        """Apply a validated control-API patch."""
        self.update(patch.endpoint, **patch.changes())

    def clear(self, endpoint: str | None = None) -> None:
        """Drop one endpoint's overrides, or (no endpoint) every override and the CLI defaults."""
        if endpoint is None:
            defaults = asdict(Faults())
            self._global = {k: v for k, v in asdict(self._initial).items() if v != defaults[k]}
            self._per_endpoint = {}
        else:
            self._per_endpoint.pop(endpoint, None)
        self._publish()

    def not_ready_endpoints(self) -> list[str]:
        """Endpoints whose probes say not loaded."""
        return [name for name in self._endpoints if self.effective(name).not_ready]

    def describe(self) -> dict[str, Any]:
        """JSON view: overrides as set, and the effective faults of every endpoint."""
        return {
            "global": dict(self._global),
            "endpoints": {k: dict(v) for k, v in self._per_endpoint.items() if v},
            "effective": {name: asdict(self.effective(name)) for name in self._endpoints},
        }

    def _publish(self) -> None:
        resolved: dict[str, Faults | None] = {}
        for name in {*self._endpoints, *self._per_endpoint}:
            faults = self.effective(name)
            resolved[name] = faults if faults.touches_requests else None
        self._effective = resolved
