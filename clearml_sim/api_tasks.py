"""``tasks.*`` endpoints."""

from __future__ import annotations

from collections.abc import Callable

from clearml_sim import errors, lifecycle, projects, query, queues, tasks, workers
from clearml_sim.endpoint import Call, Doc, Endpoint
from clearml_sim.status import (
    CLOSED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    PUBLISHED,
    STOPPED,
    change_status,
)


def get_by_id(call: Call) -> Doc:
    return {"task": call.sim.state.get_task(call.require("task"))}


def get_all(call: Call) -> Doc:
    state, body = call.sim.state, call.body
    tag_f = query.TagFilter(query.as_list(body["tags"])) if body.get("tags") else None
    sys_f = query.TagFilter(query.as_list(body["system_tags"])) if body.get("system_tags") else None
    checks: list[Callable[[Doc], bool]] = []
    if tag_f:
        checks.append(lambda d: tag_f.match(d["tags"]))
    if sys_f:
        checks.append(lambda d: sys_f.match(d["system_tags"]))
    for field in ("status", "project", "type", "user", "parent"):
        values = set(query.as_list(body.get(field)))
        if values:
            checks.append(lambda d, f=field, v=values: d.get(f) in v)  # type: ignore[misc]
    if body.get("name"):
        pattern = query.regex(body["name"])
        checks.append(lambda d: bool(pattern.search(d["name"])))
    for field in ("status_changed", "last_update", "created"):
        if body.get(field):
            checks.append(query.date_filter(field, query.as_list(body[field])))
    ids = body.get("id")
    if not (ids or body.get("search_hidden")):
        checks.append(lambda d: "hidden" not in d["system_tags"])
    found = [state.tasks[tid] for tid in query.task_candidates(state, body, tag_f)]
    if checks:
        found = [doc for doc in found if all(check(doc) for check in checks)]
    if body.get("order_by"):
        found = query.order(found, query.as_list(body["order_by"]))
    found = query.page(found, body)
    if body.get("only_fields"):
        tree = query.projection_tree(tuple(query.as_list(body["only_fields"])))
        found = [query.project(doc, tree) for doc in found]
    return {"tasks": found}


def create(call: Call) -> Doc:
    body = call.body
    fields: Doc = {
        k: body[k] for k in ("type", "comment", "parent", "project", "script") if k in body
    }
    for key in ("hyperparams", "configuration", "container", "runtime"):
        if isinstance(body.get(key), dict):
            fields[key] = body[key]
    doc = tasks.create_task(call.sim.state, str(call.require("name")), **fields)
    for key in ("tags", "system_tags"):
        if isinstance(body.get(key), list):
            call.sim.state.set_tags(doc, key, body[key])
    return {"id": doc["id"]}


def clone(call: Call) -> Doc:
    state, body = call.sim.state, call.body
    result: Doc = {}
    if body.get("new_project_name"):
        project = projects.ensure_project(state, str(body["new_project_name"]))
        body = {**body, "new_task_project": project["id"]}
        result["new_project"] = {"id": project["id"], "name": project["name"]}
    result["id"] = tasks.clone_task(state, body)["id"]
    return result


def edit(call: Call) -> Doc:
    return tasks.edit_task(call.sim.state, call.body)


def edit_hyper_params(call: Call) -> Doc:
    return {"updated": tasks.edit_hyper_params(call.sim.state, call.body)}


def get_hyper_params(call: Call) -> Doc:
    state = call.sim.state
    ids = query.as_list(call.require("tasks"))
    return {
        "params": [
            {"task": tid, "hyperparams": tasks.hyper_params_list(state.tasks[tid])}
            for tid in ids
            if tid in state.tasks
        ]
    }


def get_configurations(call: Call) -> Doc:
    state = call.sim.state
    names = set(query.as_list(call.body.get("names")))
    out = []
    for tid in query.as_list(call.require("tasks")):
        conf = state.get_task(tid).get("configuration", {})
        items = [dict(v, name=k) for k, v in conf.items() if not names or k in names]
        out.append({"task": tid, "configuration": items})
    return {"configurations": out}


def enqueue(call: Call) -> Doc:
    body = call.body
    watched = workers.watched_queues(call.sim.state) if body.get("verify_watched_queue") else None
    return lifecycle.enqueue(call.sim.state, body, watched, call.seen_status)


def dequeue(call: Call) -> Doc:
    return lifecycle.dequeue(call.sim.state, call.body)


def stop(call: Call) -> Doc:
    return lifecycle.stop(call.sim.state, call.body, call.sim.config.worker_timeout_s)


def reset(call: Call) -> Doc:
    return lifecycle.reset(call.sim.state, call.body)


def _status_handler(new: str) -> Callable[[Call], Doc]:
    def handler(call: Call) -> Doc:
        state, body = call.sim.state, call.body
        task = state.get_task(call.require("task"))
        was_queued = task["status"] == "queued"
        fields = change_status(
            state,
            task,
            new,
            force=bool(body.get("force")),
            reason=body.get("status_reason"),
            message=body.get("status_message"),
            seen=call.seen_status,
        )
        if new != IN_PROGRESS and was_queued:
            queues.remove(state, task["id"])
        result: Doc = {"updated": 1, "fields": fields}
        if new == IN_PROGRESS:
            result["started"] = 1
        return result

    handler.__name__ = f"set_{new}"
    return handler


def ping(call: Call) -> Doc:
    call.sim.state.get_task(call.require("task"))
    return {}


def delete(call: Call) -> Doc:
    state = call.sim.state
    task = state.get_task(call.require("task"))
    if task["status"] == IN_PROGRESS and not call.body.get("force"):
        raise errors.make(400, 112, "Task in progress (invalid task status)", id=task["id"])
    state.remove_task(task["id"])
    return {"deleted": 1, "updated_children": 0, "updated_models": 0}


ENDPOINTS = [
    Endpoint("tasks.get_by_id", get_by_id),
    Endpoint("tasks.get_all", get_all),
    Endpoint("tasks.get_all_ex", get_all, "2.1"),
    Endpoint("tasks.create", create),
    Endpoint("tasks.clone", clone),
    Endpoint("tasks.edit", edit),
    Endpoint("tasks.edit_hyper_params", edit_hyper_params, "2.9"),
    Endpoint("tasks.get_hyper_params", get_hyper_params, "2.9"),
    Endpoint("tasks.get_configurations", get_configurations, "2.9"),
    Endpoint("tasks.enqueue", enqueue, changes_status=True),
    Endpoint("tasks.dequeue", dequeue),
    Endpoint("tasks.stop", stop),
    Endpoint("tasks.reset", reset),
    Endpoint("tasks.started", _status_handler(IN_PROGRESS), changes_status=True),
    Endpoint("tasks.failed", _status_handler(FAILED), changes_status=True),
    Endpoint("tasks.completed", _status_handler(COMPLETED), "2.2", changes_status=True),
    Endpoint("tasks.stopped", _status_handler(STOPPED), changes_status=True),
    Endpoint("tasks.close", _status_handler(CLOSED), changes_status=True),
    Endpoint("tasks.publish", _status_handler(PUBLISHED), changes_status=True),
    Endpoint("tasks.ping", ping),
    Endpoint("tasks.delete", delete),
]
