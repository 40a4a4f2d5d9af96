"""``queues.*`` endpoints."""

from __future__ import annotations

from clearml_sim import errors, query, queues, stats, workers
from clearml_sim.endpoint import Call, Doc, Endpoint
from clearml_sim.timeutil import iso


def _select(call: Call) -> list[Doc]:
    state, body = call.sim.state, call.body
    ids = query.as_list(body.get("id"))
    if ids:
        qids = [q for q in ids if q in state.queues]
    else:
        hidden_ok = bool(body.get("search_hidden"))
        qids = [q for q in state.queues if queues.visible(state, q, hidden_ok)]
    if body.get("name"):
        pattern = query.regex(body["name"])
        qids = [q for q in qids if pattern.search(state.queues[q]["name"])]
    tag_f = query.TagFilter(query.as_list(body["tags"])) if body.get("tags") else None
    sys_f = query.TagFilter(query.as_list(body["system_tags"])) if body.get("system_tags") else None
    limit = body.get("max_task_entries")
    docs = [
        queues.queue_doc(state, q, int(limit) if limit is not None else None)
        for q in qids
        if (tag_f is None or tag_f.match(state.queues[q]["tags"]))
        and (sys_f is None or sys_f.match(state.queues[q]["system_tags"]))
    ]
    if body.get("order_by"):
        docs = query.order(docs, query.as_list(body["order_by"]))
    return query.page(docs, body)


def _projected(call: Call, docs: list[Doc]) -> list[Doc]:
    fields = call.body.get("only_fields")
    if not fields:
        return docs
    tree = query.projection_tree(tuple(query.as_list(fields)))
    return [query.project(d, tree) for d in docs]


def get_all(call: Call) -> Doc:
    return {"queues": _projected(call, _select(call))}


def get_all_ex(call: Call) -> Doc:
    state = call.sim.state
    live = workers.live_workers(state)
    docs = _select(call)
    for doc in docs:
        for entry in doc["entries"]:
            task = state.tasks.get(entry["task"])
            entry["task"] = {"id": entry["task"], "name": task["name"] if task else None}
        doc["workers"] = [
            {
                "name": w.id,
                "ip": w.ip,
                "key": workers.worker_doc(state, w)["key"],
                "task": workers.task_ref(state, w.task),
            }
            for w in live
            if doc["id"] in w.queues
        ]
    return {"queues": _projected(call, docs)}


def get_by_id(call: Call) -> Doc:
    state = call.sim.state
    qid = state.get_queue(call.require("queue"))["id"]
    limit = call.body.get("max_task_entries")
    return {"queue": queues.queue_doc(state, qid, int(limit) if limit is not None else None)}


def get_default(call: Call) -> Doc:
    queue = queues.default_queue(call.sim.state)
    return {"id": queue["id"], "name": queue["name"]}


def get_num_entries(call: Call) -> Doc:
    state = call.sim.state
    qid = state.get_queue(call.require("queue"))["id"]
    return {"num": len(state.queue_entries[qid])}


def create(call: Call) -> Doc:
    body = call.body
    doc = queues.create_queue(
        call.sim.state,
        str(call.require("name")),
        tags=body.get("tags"),
        system_tags=body.get("system_tags"),
        display_name=body.get("display_name"),
    )
    return {"id": doc["id"]}


def delete(call: Call) -> Doc:
    state = call.sim.state
    qid = state.get_queue(call.require("queue"))["id"]
    if state.queue_entries[qid] and not call.body.get("force"):
        raise errors.make(400, 702, "Queue is not empty", queue=qid)
    for tid in list(state.queue_entries[qid]):
        queues.remove(state, tid)
    name = state.queues.pop(qid)["name"]
    state.queue_by_name.pop(name, None)
    state.queue_entries.pop(qid)
    state.queue_samples.pop(qid, None)
    return {"deleted": 1}


def get_next_task(call: Call) -> Doc:
    state = call.sim.state
    qid = state.get_queue(call.require("queue"))["id"]
    popped = queues.pop_next(state, qid)
    if popped is None:
        return {}
    tid, added = popped
    result: Doc = {"entry": {"task": tid, "added": iso(added)}}
    if call.body.get("get_task_info"):
        result["task_info"] = {"company": state.config.company_id, "user": state.config.user_id}
    return result


def add_task(call: Call) -> Doc:
    state = call.sim.state
    qid = state.get_queue(call.require("queue"))["id"]
    tid = state.get_task(call.require("task"))["id"]
    queues.push(state, qid, tid)
    return {"added": 1}


def remove_task(call: Call) -> Doc:
    state = call.sim.state
    qid = state.get_queue(call.require("queue"))["id"]
    tid = call.require("task")
    removed = state.task_queue.get(tid) == qid and queues.remove(state, tid)
    return {"removed": int(removed)}


def get_queue_metrics(call: Call) -> Doc:
    return {"queues": stats.queue_metrics(call.sim.state, call.body)}


ENDPOINTS = [
    Endpoint("queues.get_all", get_all, "2.4"),
    Endpoint("queues.get_all_ex", get_all_ex, "2.4"),
    Endpoint("queues.get_by_id", get_by_id, "2.4"),
    Endpoint("queues.get_default", get_default, "2.4"),
    Endpoint("queues.get_num_entries", get_num_entries, "2.15"),
    Endpoint("queues.create", create, "2.4"),
    Endpoint("queues.delete", delete, "2.4"),
    Endpoint("queues.get_next_task", get_next_task, "2.4"),
    Endpoint("queues.add_task", add_task, "2.4"),
    Endpoint("queues.remove_task", remove_task, "2.4"),
    Endpoint("queues.get_queue_metrics", get_queue_metrics, "2.4"),
]
