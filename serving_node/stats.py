"""Request counters, and a bounded record of how often each ``X-Request-ID`` reached the node.

Tests use the record to prove "the model was not called twice" for one request id. Everything
here is touched only from the event loop, except ``reset`` and reads, which are plain dict work
and safe enough under the GIL for a test double.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from typing import Any


class RequestIdLog:
    """How many times each of the last ``capacity`` request ids was seen (LRU order)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._counts: OrderedDict[str, int] = OrderedDict()

    def seen(self, request_id: str) -> int:
        """Record one sighting; return how many times the id has now been seen."""
        counts = self._counts
        count = counts.get(request_id, 0) + 1
        counts[request_id] = count
        if count > 1:
            counts.move_to_end(request_id)
        elif len(counts) > self.capacity:
            counts.popitem(last=False)
        return count

    def count(self, request_id: str) -> int:
        """Times the id was seen (0 if never, or if it fell out of the record)."""
        return self._counts.get(request_id, 0)

    def __len__(self) -> int:
        return len(self._counts)

    def clear(self) -> None:
        """Forget every id."""
        self._counts.clear()


class NodeStats:
    """Per-endpoint request and status counts, plus the request-id record."""

    def __init__(self, request_id_capacity: int = 10_000) -> None:
        self.started_at = time.time()
        self.request_ids = RequestIdLog(request_id_capacity)
        self.reset()

    def reset(self) -> None:
        """Zero every counter and forget every request id."""
        self.total_requests = 0
        self.requests: Counter[str] = Counter()
        self.statuses: dict[str, Counter[int]] = {}
        self.last_prediction_timestamp: float | None = None
        self.request_ids.clear()

    def arrived(self, key: str, request_id: str | None) -> None:
        """A request for endpoint ``key`` reached the node (counted before any fault fires)."""
        self.total_requests += 1
        self.requests[key] += 1
        if request_id is not None:
            self.request_ids.seen(request_id)

    def answered(self, key: str, status: int) -> None:
        """The node answered a request for ``key`` with ``status``."""
        counter = self.statuses.get(key)
        if counter is None:
            counter = self.statuses[key] = Counter()
        counter[status] += 1
        if status == 200:
            self.last_prediction_timestamp = time.time()

    def describe(self) -> dict[str, Any]:
        """JSON view for ``GET /_node/stats``."""
        endpoints = {
            key: {
                "requests": count,
                "statuses": {str(s): n for s, n in sorted(self.statuses.get(key, {}).items())},
            }
            for key, count in self.requests.items()
        }
        return {
            "total_requests": self.total_requests,
            "endpoints": endpoints,
            "request_ids_tracked": len(self.request_ids),
        }
