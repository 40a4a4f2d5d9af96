"""The monitor's ClearML adapter: task statuses, many at once, over runtime.clearml's client."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from runtime.clearml import ClearMLClient

#: Ids per tasks.get_all call: keeps each request body and answer small.
CHUNK = 500
_FIELDS = ["id", "status", "status_message", "status_reason"]


def chunks(ids: Sequence[str], size: int = CHUNK) -> Iterator[list[str]]:
    """`ids` in lists of at most `size`."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


class ClearML:
    """Status fields of the clones mlbus follows."""

    def __init__(self, client: ClearMLClient) -> None:
        self.call = client.call

    async def statuses(self, task_ids: list[str]) -> list[dict[str, Any]]:
        """Status rows of up to CHUNK tasks (hidden ones included); the caller chunks, so that
        one failed call costs only its own chunk."""
        data = await self.call(
            "tasks.get_all", {"id": task_ids, "only_fields": _FIELDS, "search_hidden": True}
        )
        rows: list[dict[str, Any]] = data.get("tasks", [])
        return rows
