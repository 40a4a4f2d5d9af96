"""A record of the API calls the simulator served, for tests that assert on timing and order
(two deliveries of one request in flight at once, a clone made twice).

Each record says which login made the call: a digest of its ``Authorization`` header, so the two
clients of one test (each logs in once, and every token carries its own session id) are told
apart without any header of their own.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any

#: Calls kept; the oldest go first (a long benchmark must not grow the simulator without bound).
LIMIT = 50_000


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One API call as served: when it arrived and when it was answered (simulator clock)."""

    endpoint: str
    session: str
    task: str | None
    tags: tuple[str, ...]
    started: float
    ended: float
    result_code: int

    def overlaps(self, other: CallRecord) -> bool:
        """True when the two calls were inside the server at the same time."""
        return self.started < other.ended and other.started < self.ended

    def doc(self) -> dict[str, Any]:
        """The record as JSON (``GET /_sim/calls``; a call in flight has no end yet)."""
        doc = asdict(self)
        doc["ended"] = None if math.isinf(self.ended) else self.ended
        return doc


def session_of(authorization: str | None) -> str:
    """A short digest of an ``Authorization`` header: the same for every call of one login."""
    return hashlib.sha256((authorization or "").encode()).hexdigest()[:12]


def tags_of(body: dict[str, Any]) -> tuple[str, ...]:
    """The tags a call carries: a clone's new tags, a search's, or a create's."""
    for key in ("new_task_tags", "tags"):
        value = body.get(key)
        if isinstance(value, list):
            return tuple(str(tag) for tag in value)
    return ()


class Journal:
    """The calls served, oldest first, and those still in the server (their `ended` is infinite);
    safe to read from another thread."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._calls: deque[CallRecord] = deque(maxlen=limit)
        self._open: dict[int, CallRecord] = {}
        self._next = 0
        self._lock = threading.Lock()

    def begin(self, endpoint: str, session: str, body: dict[str, Any], started: float) -> int:
        """A call has arrived; returns the handle `end` takes."""
        task = body.get("task")
        record = CallRecord(
            endpoint=endpoint,
            session=session,
            task=task if isinstance(task, str) else None,
            tags=tags_of(body),
            started=started,
            ended=math.inf,
            result_code=0,
        )
        with self._lock:
            self._next += 1
            self._open[self._next] = record
            return self._next

    def end(self, handle: int, ended: float, result_code: int) -> None:
        """The call has been answered."""
        with self._lock:
            record = self._open.pop(handle, None)
            if record is not None:
                self._calls.append(replace(record, ended=ended, result_code=result_code))

    def calls(self, endpoint: str | None = None) -> list[CallRecord]:
        """Every call kept (the answered ones, then those in flight), or those of one endpoint
        (``tasks.clone``)."""
        with self._lock:
            calls = [*self._calls, *self._open.values()]
        return calls if endpoint is None else [c for c in calls if c.endpoint == endpoint]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._open.clear()
