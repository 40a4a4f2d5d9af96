"""``workers.*`` endpoints."""

from __future__ import annotations

from clearml_sim import errors, query, stats, workers
from clearml_sim.endpoint import Call, Doc, Endpoint


def get_all(call: Call) -> Doc:
    state, body = call.sim.state, call.body
    last_seen = body.get("last_seen", 3600)
    live = workers.live_workers(state, float(last_seen or 0))
    tag_f = query.TagFilter(query.as_list(body["tags"])) if body.get("tags") else None
    pattern = query.regex(body["worker_pattern"]) if body.get("worker_pattern") else None
    return {
        "workers": [
            workers.worker_doc(state, w)
            for w in live
            if (tag_f is None or tag_f.match(w.tags)) and (pattern is None or pattern.search(w.id))
        ]
    }


def get_count(call: Call) -> Doc:
    last_seen = call.body.get("last_seen", 3600)
    return {"count": len(workers.live_workers(call.sim.state, float(last_seen or 0)))}


def register(call: Call) -> Doc:
    body = call.body
    workers.register(
        call.sim.state,
        body.get("worker"),
        queues=body.get("queues"),
        ip=call.client_ip,
        timeout=body.get("timeout"),
        tags=body.get("tags"),
        system_tags=body.get("system_tags"),
    )
    return {}


def unregister(call: Call) -> Doc:
    workers.unregister(call.sim.state, call.body.get("worker"))
    return {}


def status_report(call: Call) -> Doc:
    workers.status_report(call.sim.state, call.body, call.client_ip)
    return {}


def get_stats(call: Call) -> Doc:
    return {"workers": stats.worker_stats(call.sim.state, call.body)}


def get_activity_report(call: Call) -> Doc:
    return stats.activity_report(call.sim.state, call.body)


def get_metric_keys(call: Call) -> Doc:
    state = call.sim.state
    wanted = set(query.as_list(call.body.get("worker_ids")))
    keys: dict[str, set[str]] = {}
    for rec in state.workers.values():
        if wanted and rec.id not in wanted:
            continue
        for _, sample, _ in rec.samples:
            for key in sample:
                keys.setdefault(key.split("_", 1)[0], set()).add(key)
    if wanted and not keys:
        raise errors.worker_stats_not_found(sorted(wanted))
    return {"categories": [{"name": c, "metric_keys": sorted(k)} for c, k in sorted(keys.items())]}


ENDPOINTS = [
    Endpoint("workers.get_all", get_all, "2.4"),
    Endpoint("workers.get_count", get_count, "2.4"),
    Endpoint("workers.register", register, "2.4"),
    Endpoint("workers.unregister", unregister, "2.4"),
    Endpoint("workers.status_report", status_report, "2.4"),
    Endpoint("workers.get_stats", get_stats, "2.4"),
    Endpoint("workers.get_activity_report", get_activity_report, "2.4"),
    Endpoint("workers.get_metric_keys", get_metric_keys, "2.4"),
]
