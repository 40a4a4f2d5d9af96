"""Queues and their FIFO entries (``bll/queue/queue_bll.py``)."""

from __future__ import annotations

from collections import deque
from typing import Any

from clearml_sim import errors
from clearml_sim.state import Doc, SimState, new_id
from clearml_sim.timeutil import iso


def create_queue(
    state: SimState,
    name: str,
    *,
    queue_id: str | None = None,
    tags: list[str] | None = None,
    system_tags: list[str] | None = None,
    display_name: str | None = None,
) -> Doc:
    """Create a queue (``queues.create``); names are unique, as on the server."""
    if name in state.queue_by_name:
        raise errors.make(400, 801, "Value combination already exists", name=name)
    stamp = iso(state.clock())
    qid = queue_id or new_id()
    doc: Doc = {
        "id": qid,
        "name": name,
        "display_name": display_name,
        "user": state.config.user_id,
        "company": state.config.company_id,
        "created": stamp,
        "tags": list(tags or []),
        "system_tags": list(system_tags or []),
        "metadata": {},
        "last_update": stamp,
    }
    state.queues[qid] = doc
    state.queue_entries[qid] = {}
    state.queue_by_name[name] = qid
    state.queue_samples[qid] = deque(maxlen=state.config.stats_retention)
    return doc


#: System tags that hide a queue from listings unless ``search_hidden`` (k8s glue's own queues).
HIDDEN_TAGS = frozenset({"hidden", "k8s-glue"})


def visible(state: SimState, qid: str, search_hidden: bool) -> bool:
    """Whether a listing that does not say ``search_hidden`` shows the queue."""
    return search_hidden or not HIDDEN_TAGS & set(state.queues[qid]["system_tags"])


def default_queue(state: SimState) -> Doc:
    """The queue whose system tags hold ``default`` (400/707 or 400/708 otherwise)."""
    found = [q for q in state.queues.values() if "default" in q["system_tags"]]
    if not found:
        raise errors.no_default_queue()
    if len(found) > 1:
        raise errors.multiple_default_queues()
    return found[0]


def entries(state: SimState, qid: str, limit: int | None = None) -> list[Doc]:
    """The queue's entries as ``[{task, added}]`` in FIFO order."""
    out: list[Doc] = []
    for tid, added in state.queue_entries[qid].items():
        if limit is not None and len(out) >= limit:
            break
        out.append({"task": tid, "added": iso(added)})
    return out


def queue_doc(state: SimState, qid: str, max_entries: int | None = None) -> Doc:
    """A queue as ``queues.get_all``/``get_by_id`` return it."""
    doc = dict(state.queues[qid])
    doc["entries"] = entries(state, qid, max_entries)
    return doc


def push(state: SimState, qid: str, tid: str) -> None:
    """Append ``tid`` to queue ``qid``, moving it out of any other queue."""
    if tid in state.queue_entries[qid]:
        raise errors.task_already_queued(tid, qid)
    remove(state, tid)
    state.queue_entries[qid][tid] = state.clock()
    state.task_queue[tid] = qid
    state.queues[qid]["last_update"] = iso(state.clock())


def remove(state: SimState, tid: str) -> bool:
    """Take ``tid`` out of whatever queue holds it; True if it was queued."""
    qid = state.task_queue.pop(tid, None)
    if qid is None:
        return False
    state.queue_entries.get(qid, {}).pop(tid, None)
    return True


def pop_next(state: SimState, qid: str) -> tuple[str, float] | None:
    """``queues.get_next_task``: pop the oldest entry, or None when the queue is empty."""
    pending = state.queue_entries.get(qid)
    if not pending:
        return None
    tid = next(iter(pending))
    added = pending.pop(tid)
    state.task_queue.pop(tid, None)
    return tid, added


def sample_queues(state: SimState, now: float) -> None:
    """Record length and average wait of every queue, for ``queues.get_queue_metrics``."""
    for qid, pending in state.queue_entries.items():
        wait = sum(now - t for t in pending.values()) / len(pending) if pending else 0.0
        state.queue_samples[qid].append((now, len(pending), wait))


def find_by_name(state: SimState, name: Any) -> str | None:
    """Queue id for an exact name, or None."""
    return state.queue_by_name.get(name) if isinstance(name, str) else None
