"""Service fixtures for this tier (see tests/fixtures.py)."""

from tests.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    enqueuer,
    ingest,
    node,
    parking_task_id,
    sim,
)
