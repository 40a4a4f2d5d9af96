"""ClearML REST adapter, speaking the API as the clearml SDK does (shared/reference/clearml-api.md):
`auth.login` with Basic credentials for a token, then `/v2.23/<service>.<action>` calls with a JSON
body and the Bearer token; the envelope's `meta.result_code` decides success.

Failures are translated at this boundary: 5xx, timeouts and refused connections become
ClearMLUnavailable (retried by the caller, boundedly: the SDK's own default retries for hours);
4xx become ClearMLRejected with words a flow author understands.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from services.enqueuer.errors import ClearMLRejected, ClearMLUnavailable

log = logging.getLogger(__name__)
API = "v2.23"
_QUEUE_TTL_S = 60.0

_USER_WORDS = {
    101: "The task behind this id no longer exists on the cluster; ask an admin to fix its mapping.",
    110: "The task is in a state that cannot be changed that way ({detail}).",
    701: "The queue does not exist on the cluster.",
    706: "The task is already queued.",
}


class ClearML:
    """A small async client for the calls the enqueuer (and monitor) make."""

    def __init__(self, http: httpx.AsyncClient, host: str, access_key: str, secret_key: str):
        self._http, self._host = http, host.rstrip("/")
        self._auth = (access_key, secret_key)
        self._token: str | None = None
        self._queues: dict[str, tuple[str, float]] = {}
        self._names: dict[str, str] = {}

    async def call(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """One API call; returns `data`. Re-logs in once on 401, like the SDK."""
        if self._token is None:
            await self._login()
        response = await self._send(f"/{API}/{endpoint}", body)
        if response.status_code == 401:
            await self._login()
            response = await self._send(f"/{API}/{endpoint}", body)
        return self._data(endpoint, response)

    async def _login(self) -> None:
        try:
            response = await self._http.get(f"{self._host}/auth.login", auth=self._auth)
        except httpx.HTTPError as exc:
            raise ClearMLUnavailable(f"auth.login: {exc!r}") from exc
        self._token = str(self._data("auth.login", response)["token"])

    async def _send(self, path: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            return await self._http.post(f"{self._host}{path}", json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ClearMLUnavailable(f"{path}: {exc!r}") from exc

    def _data(self, endpoint: str, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 500 or response.status_code == 429:
            raise ClearMLUnavailable(f"{endpoint}: HTTP {response.status_code}")
        try:
            envelope = response.json()
            meta = envelope["meta"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ClearMLUnavailable(f"{endpoint}: not a ClearML envelope") from exc
        code, sub = int(meta.get("result_code", 0)), int(meta.get("result_subcode", 0))
        if code == 200:
            data: dict[str, Any] = envelope.get("data") or {}
            return data
        message = str(meta.get("result_msg", ""))
        words = _USER_WORDS.get(sub, "The cluster refused the request: {detail}.")
        raise ClearMLRejected(code, sub, message, words.format(detail=message))

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
            {"task": template, "new_task_name": name, "new_task_parent": template,
             "new_task_tags": tags},
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
            raise ClearMLRejected(400, 701, f"queue {name!r} not found",
                                  f"The queue '{name}' does not exist on the cluster.")
        self._queues[name] = (str(queues[0]["id"]), time.monotonic())
        return self._queues[name][0]

    async def enqueue(self, task_id: str, queue_id: str, request_id: str) -> bool | None:
        """Enqueue; returns whether any worker listens on the queue (None: server did not say)."""
        data = await self.call(
            "tasks.enqueue",
            {"task": task_id, "queue": queue_id, "status_reason": "mlbus",
             "status_message": f"request {request_id}", "verify_watched_queue": True},
        )
        watched = data.get("queue_watched")
        return bool(watched) if watched is not None else None

    async def statuses(self, task_ids: list[str]) -> list[dict[str, Any]]:
        """Status fields of several tasks at once."""
        data = await self.call(
            "tasks.get_all",
            {"id": task_ids, "only_fields": ["id", "status", "status_message", "status_reason"],
             "search_hidden": True},
        )
        tasks: list[dict[str, Any]] = data.get("tasks", [])
        return tasks


def _regex_escape(name: str) -> str:
    return "".join("\\" + c if c in r".^$*+?{}[]\|()-" else c for c in name)
