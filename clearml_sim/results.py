"""What a run leaves behind, served as the real server and file server serve it.

- scalars: ``events.add_batch`` type ``training_stats_scalar``;
  ``events.get_task_latest_scalar_values`` answers ``{metrics: [{name, variants: [{name,
  last_value, last_10_value}]}], last_iter, ...}`` from the events with ``value > 0`` only
  (the server's query is ``value:>0``: a scalar that ends at 0 or below is left out), the
  last by iteration;
- artifacts: ``execution.artifacts`` entries ``{key, type, mode, uri, content_size, hash,
  timestamp, type_data: {content_type, preview}}``; their ``uri`` points at the file server;
- output models: ``models.output: [{name, model}]`` on the task, the model itself (``uri``,
  ``framework``) from ``models.get_all``;
- the file server: ``GET /files/<path>`` on the simulator's own address (a real install runs
  it apart, on port 8081); it answers the bytes, or 404.
"""

from __future__ import annotations

import hashlib
import random

from clearml_sim import errors
from clearml_sim.state import Doc, SimState, new_id

Scalar = tuple[int, float, int]  # iteration, value, timestamp (ms)


def add_scalar(state: SimState, task_id: str, event: Doc) -> None:
    """Keep one ``training_stats_scalar`` event."""
    try:
        value = float(event["value"])
        iteration = int(event.get("iter") or 0)
    except (KeyError, TypeError, ValueError):
        return
    key = (str(event.get("metric") or ""), str(event.get("variant") or ""))
    stamp = int(event.get("timestamp") or state.clock() * 1000)
    state.task_scalars.setdefault(task_id, {}).setdefault(key, []).append((iteration, value, stamp))


def latest_scalars(state: SimState, body: Doc) -> Doc:
    """``events.get_task_latest_scalar_values``."""
    task = state.get_task(body.get("task"))
    by_key = state.task_scalars.get(task["id"], {})
    metrics: dict[str, list[Doc]] = {}
    last_stamp, last_iter = 0, 0
    for (metric, variant), points in sorted(by_key.items()):
        positive = sorted((p for p in points if p[1] > 0), key=lambda p: p[0])
        if not positive:
            continue
        last_iter = max(last_iter, positive[-1][0])
        last_stamp = max(last_stamp, *(p[2] for p in positive))
        metrics.setdefault(metric, []).append(
            {
                "name": variant,
                "last_value": positive[-1][1],
                "last_10_value": positive[max(0, len(positive) - 10)][1],
            }
        )
    return {
        "metrics": [{"name": m, "variants": v} for m, v in metrics.items()],
        "last_iter": last_iter,
        "name": task["name"],
        "status": task["status"],
        "last_timestamp": last_stamp,
    }


def put_file(state: SimState, path: str, content: bytes) -> str:
    """Store a file on the simulated file server; returns its URI."""
    state.files[path] = content
    return f"{state.files_url.rstrip('/')}/{path}"


def add_artifact(
    state: SimState, task: Doc, name: str, filename: str, *, content: bytes, content_type: str
) -> Doc:
    """An output artifact uploaded to the file server and registered on the task."""
    path = (
        f"{task.get('project') or 'mlbus'}/{task['name']}.{task['id']}/artifacts/{name}/{filename}"
    )
    artifact: Doc = {
        "key": name,
        "type": "custom",
        "mode": "output",
        "uri": put_file(state, path, content),
        "content_size": len(content),
        "hash": hashlib.sha256(content).hexdigest(),
        "timestamp": int(state.clock()),
        "type_data": {
            "content_type": content_type,
            "preview": content[:64].decode(errors="replace"),
        },
    }
    artifacts = [a for a in task["execution"].get("artifacts") or [] if a.get("key") != name]
    task["execution"]["artifacts"] = [*artifacts, artifact]
    return artifact


def add_output_model(
    state: SimState, task: Doc, name: str, filename: str, *, content: bytes, framework: str
) -> Doc:
    """An output model: its weights on the file server, the model object, the task's link."""
    model_id = new_id()
    path = f"{task.get('project') or 'mlbus'}/{task['name']}.{task['id']}/models/{filename}"
    model: Doc = {
        "id": model_id,
        "name": name,
        "framework": framework,
        "uri": put_file(state, path, content),
        "task": task["id"],
        "ready": True,
        "created": task.get("last_update"),
        "tags": [],
        "system_tags": [],
        "labels": {},
        "design": {},
    }
    state.models[model_id] = model
    outputs = [m for m in task["models"].get("output") or [] if m.get("name") != name]
    task["models"]["output"] = [*outputs, {"name": name, "model": model_id}]
    return model


def run_outputs(state: SimState, task: Doc, rng: random.Random, epochs: int) -> None:
    """What a simulated training run reports and uploads before it completes: per-epoch
    Summary/loss and Summary/accuracy scalars, a predictions CSV artifact, a model file."""
    loss, accuracy = rng.uniform(0.8, 1.2), rng.uniform(0.5, 0.6)
    now_ms = int(state.clock() * 1000)
    for epoch in range(1, epochs + 1):
        loss, accuracy = loss * 0.8, min(0.99, accuracy + 0.04)
        for variant, value in (("loss", loss), ("accuracy", accuracy)):
            add_scalar(
                state,
                task["id"],
                {
                    "metric": "Summary",
                    "variant": variant,
                    "value": round(value, 4),
                    "iter": epoch,
                    "timestamp": now_ms,
                },
            )
    rows = "\n".join(f"{i},{rng.randint(0, 40)}" for i in range(20))
    csv = f"slot,free\n{rows}\n".encode()
    add_artifact(
        state, task, "predictions", "predictions.csv", content=csv, content_type="text/csv"
    )
    weights = rng.randbytes(2048)
    add_output_model(state, task, "model", "model.pkl", content=weights, framework="ScikitLearn")


def models_get_all(state: SimState, body: Doc) -> Doc:
    """``models.get_all`` by id (other filters are not simulated)."""
    ids = body.get("id")
    wanted = ids if isinstance(ids, list) else [ids] if ids else list(state.models)
    return {"models": [state.models[m] for m in wanted if m in state.models]}


def get_file(state: SimState, path: str) -> bytes:
    """A file of the simulated file server (ApiError 404 when absent)."""
    content = state.files.get(path)
    if content is None:
        raise errors.ApiError(404, 0, f"file not found: {path}")
    return content
