"""The ``/_sim/`` control API (not part of ClearML): health, faults, inspection (the calls served
among it), agents, reset.

Plain JSON without the ClearML envelope; errors are ``{"detail": "..."}``. No auth: the simulator
is a local test double.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from clearml_sim import queues, workers
from clearml_sim.asgi import Receive, Scope, Send, query_args, read_body, send_json

if TYPE_CHECKING:
    from clearml_sim.simulator import Simulator

Doc = dict[str, Any]


class ControlError(Exception):
    """A control request that cannot be served; ``status`` is the HTTP status."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def handle(sim: Simulator, scope: Scope, receive: Receive, send: Send) -> None:
    raw = await read_body(receive)
    parts = [p for p in scope["path"].split("/") if p][1:]
    try:
        body = orjson.loads(raw) if raw.strip() else {}
        if not isinstance(body, dict):
            raise ControlError(400, "body must be a JSON object")
        body.update(query_args(scope["query_string"]))
        status, payload = _route(sim, scope["method"], parts, body)
    except ControlError as exc:
        status, payload = exc.status, {"detail": exc.detail}
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        status, payload = 400, {"detail": str(exc)}
    await send_json(send, status, payload)


def _route(sim: Simulator, method: str, parts: list[str], body: Doc) -> tuple[int, Any]:
    head = parts[0] if parts else ""
    view = _VIEWS.get(head)
    if view is not None and method == "GET":
        return 200, view(sim, parts[1:], body)
    if head == "faults":
        return _faults(sim, method, body)
    if head == "agents":
        return _agents(sim, method, parts[1:], body)
    if head == "reset" and method == "POST":
        sim.reset(demo=body.get("demo"))
        return 200, _health(sim)
    raise ControlError(404, f"no control route {method} /_sim/{'/'.join(parts)}")


def _queues(sim: Simulator, rest: list[str], body: Doc) -> Doc:
    return {"queues": [queues.queue_doc(sim.state, q) for q in sim.state.queues]}


def _workers(sim: Simulator, rest: list[str], body: Doc) -> Doc:
    live = workers.live_workers(sim.state)
    return {"workers": [workers.worker_doc(sim.state, w) for w in live]}


def _health(sim: Simulator, rest: list[str] | None = None, body: Doc | None = None) -> Doc:
    state = sim.state
    return {
        "ok": True,
        "uptime_s": round(sim.clock() - sim.started_at, 3),
        "tasks": len(state.tasks),
        "queues": len(state.queues),
        "workers": len(state.workers),
        "agents": len(sim.agents.agents),
        "faults": sim.faults.snapshot(),
    }


def _faults(sim: Simulator, method: str, body: Doc) -> tuple[int, Any]:
    if method == "GET":
        return 200, sim.faults.snapshot()
    if method == "DELETE":
        sim.faults.clear()
        return 200, sim.faults.snapshot()
    if method in ("POST", "PUT"):
        endpoints = body.get("endpoints")
        return 200, sim.faults.configure(
            error_rate=float(body.get("error_rate") or 0.0),
            latency_ms=float(body.get("latency_ms") or 0.0),
            outage_s=float(body.get("outage_s") or 0.0),
            endpoints=[endpoints] if isinstance(endpoints, str) else endpoints,
        )
    raise ControlError(405, f"{method} not allowed on /_sim/faults")


def _calls(sim: Simulator, rest: list[str], body: Doc) -> Doc:
    endpoint = body.get("endpoint")
    calls = sim.journal.calls(str(endpoint) if endpoint else None)
    return {"calls": [c.doc() for c in calls]}


def _tasks(sim: Simulator, rest: list[str], body: Doc) -> Doc:
    state = sim.state
    if rest:
        task = state.tasks.get(rest[0])
        if task is None:
            raise ControlError(404, f"no task {rest[0]}")
        return {"task": task}
    docs = list(state.tasks.values())
    if body.get("tag"):  # one tag, or several comma-separated (any of them)
        ids = {t for tag in str(body["tag"]).split(",") for t in state.tag_index.get(tag, {})}
        docs = [state.tasks[t] for t in sorted(ids, key=state.task_seq.__getitem__)]
    if body.get("status"):
        docs = [d for d in docs if d["status"] == body["status"]]
    if body.get("name"):
        docs = [d for d in docs if d["name"] == body["name"]]
    return {"tasks": list(docs)}


def _agents(sim: Simulator, method: str, rest: list[str], body: Doc) -> tuple[int, Any]:
    pool = sim.agents
    if not rest:
        if method == "GET":
            return 200, {"agents": [a.describe(sim.state) for a in pool.agents.values()]}
        if method == "POST":
            queue_names = body.get("queues") or []
            agent = pool.add(
                str(body.get("name") or ""),
                [queue_names] if isinstance(queue_names, str) else list(queue_names),
                gpus=int(body.get("gpus", 1)),
                duration_s=float(body["duration_s"])
                if body.get("duration_s") is not None
                else None,
                slots=int(body.get("slots", 1)),
            )
            return 201, agent.describe(sim.state)
        raise ControlError(405, f"{method} not allowed on /_sim/agents")
    name = rest[0]
    if name not in pool.agents:
        raise ControlError(404, f"no agent {name}")
    action = rest[1] if len(rest) > 1 else ""
    if method == "POST" and action in ("stop", "start"):
        return 200, pool.set_paused(name, action == "stop").describe(sim.state)
    if method == "DELETE" and not action:
        pool.remove(name)
        return 200, {"removed": name}
    if method == "GET" and not action:
        return 200, pool.agents[name].describe(sim.state)
    raise ControlError(405, f"{method} not allowed on /_sim/agents/{name}/{action}")


_VIEWS: dict[str, Callable[[Simulator, list[str], Doc], Doc]] = {
    "health": _health,
    "calls": _calls,
    "tasks": _tasks,
    "queues": _queues,
    "workers": _workers,
}
