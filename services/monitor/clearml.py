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

    async def task_log(self, task_id: str, lines: int) -> list[dict[str, Any]]:
        """The task's last `lines` console log events, oldest first (events.get_task_log pages
        back from the newest; the order of its answer is not relied on)."""
        data = await self.call(
            "events.get_task_log",
            {"task": task_id, "batch_size": lines, "navigate_earlier": True},
        )
        events: list[dict[str, Any]] = [e for e in data.get("events") or [] if isinstance(e, dict)]
        return sorted(events, key=lambda e: e.get("timestamp") or 0)

    async def results(
        self, task_id: str
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
        """What a completed task produced: its artifacts and output model links, the models
        behind those links, and the last values of its scalars."""
        data = await self.call(
            "tasks.get_all",
            {"id": [task_id], "only_fields": ["id", "execution.artifacts", "models.output"]},
        )
        rows = data.get("tasks") or []
        task: dict[str, Any] = rows[0] if rows else {}
        model_ids = [
            str(m["model"])
            for m in (task.get("models") or {}).get("output") or []
            if isinstance(m, dict) and m.get("model")
        ]
        models: list[dict[str, Any]] = []
        if model_ids:
            found = await self.call(
                "models.get_all", {"id": model_ids, "only_fields": ["id", "name", "framework"]}
            )
            models = [m for m in found.get("models") or [] if isinstance(m, dict)]
        scalars = await self.call("events.get_task_latest_scalar_values", {"task": task_id})
        return task, models, scalars

    async def workers(self, last_seen_s: float) -> list[dict[str, Any]]:
        """Workers that reported within `last_seen_s` (older ones are zombies: ClearML keeps a
        dead agent's worker for its 10-minute TTL)."""
        data = await self.call("workers.get_all", {"last_seen": max(1, int(last_seen_s))})
        rows: list[dict[str, Any]] = data.get("workers", [])
        return rows

    async def queues(self) -> list[dict[str, Any]]:
        """Every queue with its entries (oldest first)."""
        data = await self.call(
            "queues.get_all", {"only_fields": ["id", "name", "entries"], "search_hidden": True}
        )
        rows: list[dict[str, Any]] = data.get("queues", [])
        return rows

    async def queue_metrics(
        self, queue_ids: list[str], now: float, window_s: int, interval_s: int
    ) -> list[dict[str, Any]]:
        """Per queue, `dates` (epoch ms), `avg_waiting_times` and `queue_lengths` over the last
        `window_s`: only buckets that hold samples, so a queue may have fewer points, or none."""
        if not queue_ids:
            return []
        body = {
            "from_date": now - window_s,
            "to_date": now,
            "interval": interval_s,
            "queue_ids": queue_ids,
            "search_hidden": True,  # else queues tagged k8s-glue are left out
        }
        data = await self.call("queues.get_queue_metrics", body)
        rows: list[dict[str, Any]] = data.get("queues", [])
        return rows
