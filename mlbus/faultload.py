"""A mixed burst of user requests against ingest while a server below is away, and its account.

The fault tests (`tests/faults/`) and `bench/faults.py` send enqueues and on-demand calls at a
steady rate (open loop: a slow answer does not slow the senders, as with real users), record
every outcome, then count, against what ClearML cloned and what the model was called for:

- **sent**, **answered** (by status and code), **unanswered** (no HTTP answer within the
  client's patience: the caller cannot know what happened);
- **carried**: an enqueue with a clone, an on-demand call answered 200;
- **lost**: an enqueue answered 202 with no clone (goal 0);
- **duplicated**: a request id cloned, or its model called, more than once (goal 0);
- **late**: an answer that came after the request's own bound (goal 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

Kind = Literal["enqueue", "ondemand"]


@dataclass(frozen=True)
class Outcome:
    """One request's fate, as the caller saw it."""

    kind: Kind
    sent_at: float  # monotonic
    elapsed_s: float
    bound_s: float  # the longest answer ingest may take (publish bound, or the deadline)
    status: int | None = None  # None: no HTTP answer
    code: str | None = None
    request_id: str | None = None

    @property
    def label(self) -> str:
        """`202`, `503 bus_unavailable`, `no answer`."""
        if self.status is None:
            return "no answer"
        return f"{self.status} {self.code}" if self.code else str(self.status)


@dataclass
class Burst:
    """Sends enqueues and on-demand calls at `rate` each per second until stopped."""

    client: httpx.AsyncClient
    token: str
    task_id: str
    machine_id: str
    endpoint: str
    features: Mapping[str, Any]
    enqueue_bound_s: float  # ingest's publish bound
    ondemand_bound_s: float  # the endpoint's timeout and ingest's grace
    patience_s: float = 15.0  # how long the client waits for any answer
    outcomes: list[Outcome] = field(default_factory=list)

    async def run(self, rate: float, stop: asyncio.Event) -> None:
        """Send one of each kind every 1/rate s until `stop` is set; wait for every answer."""
        began = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        i = 0
        while not stop.is_set():
            tasks.append(asyncio.create_task(self.enqueue()))
            tasks.append(asyncio.create_task(self.ondemand()))
            i += 1
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        await asyncio.gather(*tasks)

    async def enqueue(self) -> None:
        """One `POST /v1/enqueue`."""
        body = {"task_id": self.task_id, "input": {"lr": 0.1}}
        await self._send("enqueue", "/v1/enqueue", body, self.enqueue_bound_s)

    async def ondemand(self) -> None:
        """One `POST /v1/ondemand`."""
        body = {"machine_id": self.machine_id, "endpoint": self.endpoint, "input": self.features}
        await self._send("ondemand", "/v1/ondemand", body, self.ondemand_bound_s)

    async def _send(self, kind: Kind, path: str, body: Any, bound_s: float) -> None:
        sent = time.monotonic()
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            response = await self.client.post(
                path, json=body, headers=headers, timeout=self.patience_s
            )
        except httpx.HTTPError:
            self.outcomes.append(Outcome(kind, sent, time.monotonic() - sent, bound_s))
            return
        elapsed = time.monotonic() - sent
        try:
            data = response.json()
        except ValueError:
            data = {}
        code = data.get("code") if isinstance(data, dict) else None
        rid = data.get("request_id") if isinstance(data, dict) else None
        rid = rid or response.headers.get("x-request-id")
        self.outcomes.append(Outcome(kind, sent, elapsed, bound_s, response.status_code, code, rid))

    def of(self, kind: Kind) -> list[Outcome]:
        """The outcomes of one kind."""
        return [o for o in self.outcomes if o.kind == kind]

    def ids(self, kind: Kind, status: int | None = None) -> set[str]:
        """The request ids of one kind that were answered (with `status`, when given)."""
        return {
            o.request_id
            for o in self.of(kind)
            if o.request_id and (status is None or o.status == status)
        }


#: How much later than its bound an answer may come before it counts as late (scheduling on a
#: loaded machine, the HTTP round trip).
SLACK_S = 2.0


def account(
    burst: Burst, clones: Mapping[str, int], model_calls: Mapping[str, int]
) -> dict[str, dict[str, Any]]:
    """The counts per kind (see the module docstring). `clones`: clones per request id (every
    request id that ClearML knows); `model_calls`: model calls per request id. A duplicate
    counts wherever it is, also for a request whose caller got no answer."""
    report: dict[str, dict[str, Any]] = {}
    for kind, done, made in (
        ("enqueue", 202, clones),
        ("ondemand", 200, model_calls),
    ):
        outcomes = burst.of(kind)  # type: ignore[arg-type]
        ids = {o.request_id for o in outcomes if o.request_id}
        accepted = [o.request_id for o in outcomes if o.status == done and o.request_id]
        report[kind] = {
            "sent": len(outcomes),
            "answered": dict(Counter(o.label for o in outcomes if o.status is not None)),
            "unanswered": sum(o.status is None for o in outcomes),
            "late": sum(o.elapsed_s > o.bound_s + SLACK_S for o in outcomes),
            "carried": sum(1 for rid in ids if made.get(rid, 0) > 0)
            if kind == "enqueue"
            else len(accepted),
            "lost": sum(1 for rid in accepted if made.get(rid, 0) == 0),
            "duplicated": sum(1 for n in made.values() if n > 1),
            "carried_after_503": sum(
                1
                for o in outcomes
                if o.status == 503 and o.request_id and made.get(o.request_id, 0) > 0
            ),
            "slowest_s": round(max((o.elapsed_s for o in outcomes), default=0.0), 2),
        }
    return report


async def clones_per_request(client: httpx.AsyncClient, sim_url: str) -> dict[str, int]:
    """Clones per request id, as the ClearML simulator holds them (its control API)."""
    response = await client.get(f"{sim_url}/_sim/tasks", params={"tag": "mlbus"}, timeout=30)
    response.raise_for_status()
    per: Counter[str] = Counter()
    for task in response.json()["tasks"]:
        for tag in task.get("tags", []):
            if tag.startswith("mlbus-request:"):
                per[tag.split(":", 1)[1]] += 1
    return dict(per)


async def model_calls(
    client: httpx.AsyncClient, node_url: str, request_ids: set[str]
) -> dict[str, int]:
    """How often the demo serving node was called for each request id (its control API)."""
    gate = asyncio.Semaphore(16)

    async def one(rid: str) -> tuple[str, int]:
        async with gate:
            response = await client.get(f"{node_url}/_node/requests/{rid}", timeout=30)
            response.raise_for_status()
            return rid, int(response.json()["count"])

    return dict(await asyncio.gather(*(one(rid) for rid in sorted(request_ids))))
