"""Timestamps in the server's wire format."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float) -> str:
    """Epoch seconds to ISO-8601 with microseconds and ``+00:00``; fixed width, so strings sort."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def parse_ts(value: str) -> float:
    """ISO-8601 or ``str(datetime)`` to epoch seconds; naive values are UTC, as on the server."""
    dt = datetime.fromisoformat(value.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()
