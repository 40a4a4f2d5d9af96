"""Errors a serving node answers with; each carries its HTTP status and ``detail``.

NodeError                    (status, detail) -> {"detail": ...}
├── EndpointNotFoundError    404, in ClearML Serving's wording
├── InvalidInputError        422, a missing or mistyped feature, a body that is not JSON
└── InjectedFaultError       500 or the configured status: a fault knob fired
"""

from __future__ import annotations

from typing import Any


class NodeError(Exception):
    """An error with the HTTP status and the ``detail`` the client receives."""

    status: int = 500

    def __init__(self, detail: Any, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status


class EndpointNotFoundError(NodeError):
    """No endpoint (or no such version of it) is served here."""

    status = 404

    def __init__(self, key: str) -> None:
        super().__init__(f"Error processing request, endpoint was not found: {key}")


class InvalidInputError(NodeError):
    """The request body cannot be turned into model input."""

    status = 422


class InjectedFaultError(NodeError):
    """A fault knob (error rate or status override) chose to fail this request."""
