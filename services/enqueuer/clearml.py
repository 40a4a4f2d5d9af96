"""The enqueuer's ClearML adapter: the calls it makes, over runtime.clearml's client."""

from __future__ import annotations

import time
from typing import Any

from runtime.clearml import ClearMLClient, ClearMLRejected

_QUEUE_TTL_S = 60.0


class ClearML:
    """Template names, clones, hyperparameters, queues, enqueue, statuses."""

    def __init__(self, client: ClearMLClient) -> None:
        self.call = client.call
        self._queues: dict[str, tuple[str, float]] = {}
        self._names: dict[str, str] = {}

    async def template_name(self, task_id: str) -> str:
        """The template's name (cached: template names rarely change)."""
        if task_id not in self._names:
            data = await self.call("tasks.get_by_id", {"task": task_id})
            self._names[task_id] = str(data["task"].get("name") or task_id)
        return self._names[task_id]

    async def find_by_tag(self, tag: str) -> dict[str, Any] | None:
        """The task carrying `tag` (how a restarted worker finds a clone it already made)."""
        data = await self.call(
            "tasks.get_all",
            {"tags": [tag], "only_fields": ["id", "status"], "search_hidden": True},
        )
        tasks: list[dict[str, Any]] = data.get("tasks", [])
        return tasks[0] if tasks else None

    async def clone(self, template: str, name: str, tags: list[str]) -> str:
        """Clone the template; returns the new task's id."""
        data = await self.call(
            "tasks.clone",
            {
                "task": template,
                "new_task_name": name,
                "new_task_parent": template,
                "new_task_tags": tags,
            },
        )
        return str(data["id"])

    async def set_hyperparams(self, task_id: str, params: list[dict[str, str]]) -> None:
        """Write hyperparameters in one call (the clone is still 'created', so it may)."""
        if params:
            await self.call("tasks.edit_hyper_params", {"task": task_id, "hyperparams": params})

    async def queue_id(self, name: str) -> str:
        """A queue's id by exact name (cached for a minute)."""
        cached = self._queues.get(name)
        if cached and time.monotonic() - cached[1] < _QUEUE_TTL_S:
            return cached[0]
        data = await self.call(
            "queues.get_all", {"name": f"^{_regex_escape(name)}$", "only_fields": ["id", "name"]}
        )
        queues = [q for q in data.get("queues", []) if q.get("name") == name]
        if not queues:
            raise ClearMLRejected(
                400,
                701,
                f"queue {name!r} not found",
                f"The queue '{name}' does not exist on the cluster.",
            )
        self._queues[name] = (str(queues[0]["id"]), time.monotonic())
        return self._queues[name][0]

    def forget_queue(self, name: str) -> None:
        """Drop a cached queue id (the queue was deleted, maybe re-created under its name)."""
        self._queues.pop(name, None)

    async def enqueue(self, task_id: str, queue_id: str, request_id: str) -> bool | None:
        """Enqueue; returns whether any worker listens on the queue (None: server did not say)."""
        data = await self.call(
            "tasks.enqueue",
            {
                "task": task_id,
                "queue": queue_id,
                "status_reason": "mlbus",
                "status_message": f"request {request_id}",
                "verify_watched_queue": True,
            },
        )
        watched = data.get("queue_watched")
        return bool(watched) if watched is not None else None

    async def statuses(self, task_ids: list[str]) -> list[dict[str, Any]]:
        """Status fields of several tasks at once."""
        data = await self.call(
            "tasks.get_all",
            {
                "id": task_ids,
                "only_fields": ["id", "status", "status_message", "status_reason"],
                "search_hidden": True,
            },
        )
        tasks: list[dict[str, Any]] = data.get("tasks", [])
        return tasks


def _regex_escape(name: str) -> str:
    return "".join("\\" + c if c in r".^$*+?{}[]\|()-" else c for c in name)
