"""``auth``, ``projects``, ``events``, ``server``, ``debug`` and ``users`` endpoints."""

from __future__ import annotations

from clearml_sim import errors, events, projects, query, results
from clearml_sim.endpoint import Call, Doc, Endpoint


def login(call: Call) -> Doc:
    call.sim.auth.login_check(call.authorization)
    expiration = call.body.get("expiration_sec")
    return {"token": call.sim.auth.issue(int(expiration) if expiration else None)}


def projects_get_all(call: Call) -> Doc:
    state, body = call.sim.state, call.body
    ids = set(query.as_list(body.get("id")))
    docs = [d for d in state.projects.values() if not ids or d["id"] in ids]
    if body.get("name"):
        pattern = query.regex(body["name"])
        docs = [d for d in docs if pattern.search(d["name"])]
    docs = query.page(docs, body)
    if body.get("only_fields"):
        tree = query.projection_tree(tuple(query.as_list(body["only_fields"])))
        docs = [query.project(d, tree) for d in docs]
    return {"projects": docs}


def projects_get_by_id(call: Call) -> Doc:
    pid = call.require("project")
    doc = call.sim.state.projects.get(pid)
    if doc is None:
        raise errors.invalid_project_id(pid)
    return {"project": doc}


def projects_create(call: Call) -> Doc:
    name = str(call.require("name"))
    if any(p["name"] == name for p in call.sim.state.projects.values()):
        raise errors.make(400, 801, "Value combination already exists", name=name)
    doc = projects.create_project(
        call.sim.state, name, description=call.body.get("description") or ""
    )
    return {"id": doc["id"]}


def events_add_batch(call: Call) -> Doc:
    """Log events are kept (``events.get_task_log``); other kinds are accepted and dropped."""
    batch = call.batch if call.batch is not None else [call.body]
    return {"added": events.add_batch(call.sim.state, batch), "errors": 0}


def events_get_task_log(call: Call) -> Doc:
    call.require("task")
    return events.task_log(call.sim.state, call.body)


def events_latest_scalars(call: Call) -> Doc:
    return results.latest_scalars(call.sim.state, call.body)


def models_get_all(call: Call) -> Doc:
    return results.models_get_all(call.sim.state, call.body)


def server_info(call: Call) -> Doc:
    cfg = call.sim.config
    return {
        "version": cfg.server_version,
        "build": "sim",
        "commit": "sim",
        "api_version": cfg.api_version,
        "uid": cfg.company_id,
    }


def ping(call: Call) -> Doc:
    return {"msg": "ClearML server"}


def current_user(call: Call) -> Doc:
    cfg = call.sim.config
    return {
        "user": {
            "id": cfg.user_id,
            "name": cfg.user_name,
            "company": {"id": cfg.company_id, "name": cfg.company_name},
            "role": "user",
        },
        "getting_started": {},
        "settings": {},
    }


ENDPOINTS = [
    Endpoint("auth.login", login, "1.0", auth=False),
    Endpoint("projects.get_all", projects_get_all),
    Endpoint("projects.get_by_id", projects_get_by_id),
    Endpoint("projects.create", projects_create),
    Endpoint("events.add_batch", events_add_batch),
    Endpoint("events.get_task_log", events_get_task_log, "2.9"),
    Endpoint("events.get_task_latest_scalar_values", events_latest_scalars),
    Endpoint("models.get_all", models_get_all),
    Endpoint("server.info", server_info, "2.1"),
    Endpoint("debug.ping", ping, "1.0", auth=False),
    Endpoint("users.get_current_user", current_user),
]
