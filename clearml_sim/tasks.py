"""Task documents: creation, clone, edit and hyperparameters (``bll/task``)."""

from __future__ import annotations

from typing import Any

from clearml_sim import errors
from clearml_sim.state import Doc, SimState, new_id
from clearml_sim.status import CREATED, IN_PROGRESS, touch
from clearml_sim.timeutil import iso

_CLONE_DROPPED_SYSTEM_TAGS = frozenset({"development", "archived"})
_EDITABLE = (
    "name",
    "comment",
    "type",
    "parent",
    "project",
    "script",
    "container",
    "runtime",
    "output",
    "models",
    "execution",
    "hyperparams",
    "configuration",
)


def new_task_doc(state: SimState, name: str, **fields: Any) -> Doc:
    """A complete task document with the server's defaults; ``fields`` override them."""
    stamp = iso(state.clock())
    cfg = state.config
    doc: Doc = {
        "id": new_id(),
        "name": name,
        "user": cfg.user_id,
        "company": cfg.company_id,
        "type": "training",
        "status": CREATED,
        "status_reason": "",
        "status_message": "",
        "status_changed": stamp,
        "comment": "",
        "parent": None,
        "project": None,
        "created": stamp,
        "started": None,
        "completed": None,
        "published": None,
        "active_duration": None,
        "last_update": stamp,
        "last_change": stamp,
        "last_changed_by": cfg.user_id,
        "last_worker": None,
        "last_worker_report": None,
        "last_iteration": 0,
        "enqueue_status": None,
        "output": {"destination": None},
        "execution": {"queue": None, "parameters": {}, "artifacts": []},
        "container": {},
        "models": {"input": [], "output": []},
        "script": {},
        "tags": [],
        "system_tags": [],
        "last_metrics": {},
        "hyperparams": {},
        "configuration": {},
        "runtime": {},
    }
    doc.update(fields)
    return doc


def create_task(state: SimState, name: str, **fields: Any) -> Doc:
    """Create and store a task."""
    doc = new_task_doc(state, name, **fields)
    state.add_task(doc)
    return doc


def _copy_sections(value: Any) -> Doc:
    """Two-level copy of ``{section: {name: item}}`` so clones never share items."""
    if not isinstance(value, dict):
        return {}
    return {
        sec: {k: dict(v) if isinstance(v, dict) else v for k, v in items.items()}
        if isinstance(items, dict)
        else items
        for sec, items in value.items()
    }


def clone_task(state: SimState, body: Doc) -> Doc:
    """``tasks.clone``: copy the source as a new ``created`` task (§4.4)."""
    src = state.get_task(body.get("task"))
    execution = {
        k: v for k, v in src.get("execution", {}).items() if k not in ("queue", "artifacts")
    }
    execution["artifacts"] = []
    execution.update(body.get("execution_overrides") or {})
    execution["queue"] = None
    parent = body.get("new_task_parent") or (
        src["parent"] if src.get("parent") in state.tasks else src["id"]
    )
    tags = body.get("new_task_tags")
    sys_tags = body.get("new_task_system_tags")
    hyper = body.get("new_task_hyperparams")
    config = body.get("new_task_configuration")
    doc = new_task_doc(
        state,
        body.get("new_task_name") or src["name"],
        comment=body.get("new_task_comment") or src.get("comment", ""),
        type=src.get("type", "training"),
        parent=parent,
        project=body.get("new_task_project") or src.get("project"),
        script=dict(src.get("script") or {}),
        container=dict(body.get("new_task_container") or src.get("container") or {}),
        execution=execution,
        output={"destination": (src.get("output") or {}).get("destination")},
        models={"input": list(src.get("models", {}).get("input", [])), "output": []},
        hyperparams=_copy_sections(hyper if hyper is not None else src.get("hyperparams")),
        configuration=_copy_sections(config if config is not None else src.get("configuration")),
        tags=list(tags if tags is not None else src["tags"]),
        system_tags=[
            t
            for t in (sys_tags if sys_tags is not None else src["system_tags"])
            if t not in _CLONE_DROPPED_SYSTEM_TAGS
        ],
    )
    if body.get("new_task_input_models") is not None:
        doc["models"]["input"] = list(body["new_task_input_models"])
    state.add_task(doc)
    return doc


def _require_editable(task: Doc, force: bool) -> None:
    allowed = {CREATED, IN_PROGRESS} if force else {CREATED}
    if task["status"] not in allowed:
        raise errors.invalid_status_expected(CREATED, task["status"])


def edit_task(state: SimState, body: Doc) -> dict[str, Any]:
    """``tasks.edit``: replace the given fields (``created`` only, unless ``force``)."""
    task = state.get_task(body.get("task"))
    force = bool(body.get("force"))
    if not force and task["status"] != CREATED:
        raise errors.invalid_status_expected(CREATED, task["status"])
    fields: dict[str, Any] = {}
    for key in _EDITABLE:
        if key in body:
            value = body[key]
            if key in ("hyperparams", "configuration"):
                value = _copy_sections(value)
            task[key] = value
            fields[key] = value
    for key in ("tags", "system_tags"):
        if key in body and isinstance(body[key], list):
            state.set_tags(task, key, body[key])
            fields[key] = task[key]
    fields.update(touch(state, task))
    return {"updated": 1, "fields": fields}


def _param_item(raw: Any) -> Doc:
    # The server refuses an item without a section or a name, or with an empty one (400/12);
    # it never defaults the section (a key "/lr" or "Args/" reaches it as an empty part).
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("section"), str)
        or not isinstance(raw.get("name"), str)
        or not raw["section"].strip()
        or not raw["name"].strip()
    ):
        raise errors.validation_error("hyperparams items need a non-empty section and name")
    value = raw.get("value")
    return {
        "section": raw["section"],
        "name": str(raw["name"]),
        "value": "" if value is None else str(value),
        "type": raw.get("type") or "",
        "description": raw.get("description") or "",
    }


def edit_hyper_params(state: SimState, body: Doc) -> int:
    """``tasks.edit_hyper_params`` (list form); returns ``updated``."""
    task = state.get_task(body.get("task"))
    items = [_param_item(p) for p in body.get("hyperparams") or []]
    if any(p["section"] != "properties" for p in items):
        _require_editable(task, bool(body.get("force")))
    replace = body.get("replace_hyperparams") or "none"
    hyper: Doc = {} if replace == "all" else task["hyperparams"]
    if replace == "section":
        for section in {p["section"] for p in items}:
            hyper[section] = {}
    for item in items:
        hyper.setdefault(item["section"], {})[item["name"]] = item
    task["hyperparams"] = hyper
    touch(state, task)
    return 1


def hyper_params_list(task: Doc) -> list[Doc]:
    """The task's hyperparameters as ``params_item`` list, section by section."""
    return [
        {
            "section": item.get("section", sec),
            "name": item.get("name", name),
            "value": item.get("value", ""),
            "type": item.get("type", ""),
            "description": item.get("description", ""),
        }
        for sec, items in task.get("hyperparams", {}).items()
        for name, item in items.items()
    ]


def param(task: Doc, section: str, name: str) -> str | None:
    """One hyperparameter value, or None."""
    item = task.get("hyperparams", {}).get(section, {}).get(name)
    return None if item is None else str(item.get("value", ""))
