"""In-memory store of tasks, queues, projects and workers, with the indexes the hot paths need.

Tasks are kept as wire-format dicts so ``tasks.get_by_id`` serialises them as they are. Indexes
by tag, system tag and status keep ``tasks.get_all`` filters from scanning every task; queue entries
are insertion-ordered dicts (task id -> epoch seconds added), so push, pop and removal are O(1).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from clearml_sim import errors
from clearml_sim.config import SimConfig

Doc = dict[str, Any]


def new_id() -> str:
    """A 32-hex id, the shape the server uses."""
    return os.urandom(16).hex()


@dataclass(slots=True)
class WorkerRecord:
    """One registered worker (agent daemon), live while it keeps reporting."""

    id: str
    ip: str
    register_time: float
    last_activity: float
    register_timeout: float
    queues: list[str] = field(default_factory=list)
    task: str | None = None
    queue: str | None = None
    tags: list[str] = field(default_factory=list)
    system_tags: list[str] = field(default_factory=list)
    last_report: float | None = None
    # (epoch seconds, machine_stats, has_task) per status report
    samples: deque[tuple[float, Doc, bool]] = field(default_factory=deque)


class SimState:
    """All simulator data; every mutation goes through the functions in ``tasks``/``queues``."""

    def __init__(self, config: SimConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        #: Where the simulated file server is reached (set by whoever serves the simulator).
        self.files_url = "http://127.0.0.1:8008/files"
        self.clear()

    def clear(self) -> None:
        """Forget everything (``/_sim/reset``); also the initial state."""
        self.tasks: dict[str, Doc] = {}
        self.task_seq: dict[str, int] = {}
        self.tag_index: dict[str, dict[str, None]] = {}
        self.system_tag_index: dict[str, dict[str, None]] = {}
        self.status_index: dict[str, dict[str, None]] = {}
        self.queues: dict[str, Doc] = {}
        self.queue_entries: dict[str, dict[str, float]] = {}
        self.queue_by_name: dict[str, str] = {}
        self.queue_samples: dict[str, deque[tuple[float, int, float]]] = {}
        self.task_queue: dict[str, str] = {}
        self.projects: dict[str, Doc] = {}
        self.workers: dict[str, WorkerRecord] = {}
        #: Console log events per task (``events.add_batch`` type ``log``), oldest first.
        self.task_logs: dict[str, deque[Doc]] = {}
        #: Scalar events per task and (metric, variant): (iteration, value, timestamp ms).
        self.task_scalars: dict[str, dict[tuple[str, str], list[tuple[int, float, int]]]] = {}
        self.models: dict[str, Doc] = {}
        #: The file server's content by path.
        self.files: dict[str, bytes] = {}
        self._seq = 0

    # ---- task indexes -------------------------------------------------------------------------

    def add_task(self, doc: Doc) -> None:
        """Store a new task document and index it."""
        tid = doc["id"]
        self._seq += 1
        self.tasks[tid] = doc
        self.task_seq[tid] = self._seq
        _index_add(self.tag_index, doc["tags"], tid)
        _index_add(self.system_tag_index, doc["system_tags"], tid)
        self.status_index.setdefault(doc["status"], {})[tid] = None

    def remove_task(self, tid: str) -> None:
        doc = self.tasks.pop(tid)
        self.task_seq.pop(tid, None)
        _index_remove(self.tag_index, doc["tags"], tid)
        _index_remove(self.system_tag_index, doc["system_tags"], tid)
        self.status_index.get(doc["status"], {}).pop(tid, None)
        self.task_logs.pop(tid, None)
        self.task_scalars.pop(tid, None)
        qid = self.task_queue.pop(tid, None)
        if qid is not None:
            self.queue_entries.get(qid, {}).pop(tid, None)

    def set_tags(self, doc: Doc, key: str, values: Iterable[str]) -> None:
        """Replace ``tags`` or ``system_tags`` keeping the index in step."""
        index = self.tag_index if key == "tags" else self.system_tag_index
        new = list(dict.fromkeys(values))
        _index_remove(index, doc[key], doc["id"])
        doc[key] = new
        _index_add(index, new, doc["id"])

    def set_status_index(self, tid: str, old: str, new: str) -> None:
        if old != new:
            self.status_index.get(old, {}).pop(tid, None)
            self.status_index.setdefault(new, {})[tid] = None

    def get_task(self, tid: Any) -> Doc:
        """The task or 400/101."""
        if not isinstance(tid, str) or tid not in self.tasks:
            raise errors.invalid_task_id(tid, self.config.company_id)
        return self.tasks[tid]

    def get_queue(self, qid: Any) -> Doc:
        """The queue or 400/701."""
        if not isinstance(qid, str) or qid not in self.queues:
            raise errors.invalid_queue_id(qid)
        return self.queues[qid]


def _index_add(index: dict[str, dict[str, None]], keys: Iterable[str], tid: str) -> None:
    for key in keys:
        index.setdefault(key, {})[tid] = None


def _index_remove(index: dict[str, dict[str, None]], keys: Iterable[str], tid: str) -> None:
    for key in keys:
        bucket = index.get(key)
        if bucket is not None:
            bucket.pop(tid, None)
            if not bucket:
                del index[key]
