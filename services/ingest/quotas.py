"""Quotas: requests per window on each path, and tasks queued or running at once, per user.

Limits come from the caller's role (a user with several roles gets the most generous); over a
limit is 429 `quota_exceeded` with `Retry-After`, and nothing is published.

- **Rate:** a sliding window per user and path: at most N requests in any `window_s` seconds
  (exact, so `Retry-After` is when the oldest counted request leaves the window).
- **Concurrent tasks:** this process remembers the requests each user enqueued through it (a
  slot is taken before publishing, so a burst cannot overshoot); when
  the count reaches the limit, it asks MongoDB (by `_id`, indexed) which of them have ended, and
  forgets those, so the check costs nothing until a user is near the limit.

Counts are per ingest process: with several instances behind a balancer, set each instance's
limits to its share, or accept that a user may get up to instances x limit.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from runtime.http import ApiError
from schemas.status import ENDED

#: Statuses of an enqueue request that no longer hold a slot.

Lookup = Callable[[str], Awaitable[str | None]]


def exceeded(message: str, retry_after_s: float) -> ApiError:
    """429 with the seconds to wait, rounded up."""
    seconds = max(1, math.ceil(retry_after_s))
    return ApiError(
        429,
        "quota_exceeded",
        f"{message} Try again in {seconds} s.",
        headers={"Retry-After": str(seconds)},
    )


def limit_for(limits: Mapping[str, int], roles: Iterable[str]) -> int | None:
    """The most generous limit among `roles` (None: no limit for any of them)."""
    found = [limits[r] for r in roles if r in limits]
    return max(found) if found else None


@dataclass
class SlidingWindow:
    """At most `limit` events per key in any `window_s` seconds."""

    window_s: float
    clock: Callable[[], float] = time.monotonic
    _events: dict[tuple[str, str], deque[float]] = field(default_factory=dict)

    def take(self, key: tuple[str, str], limit: int) -> float | None:
        """Count one event; None when allowed, else seconds until one would be."""
        now = self.clock()
        events = self._events.setdefault(key, deque())
        while events and now - events[0] >= self.window_s:
            events.popleft()
        if len(events) >= limit:
            return events[0] + self.window_s - now
        events.append(now)
        if len(self._events) > 100_000:
            self._forget_idle(now)
        return None

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, e in self._events.items() if not e or now - e[-1] >= self.window_s]:
            del self._events[key]


@dataclass
class ActiveTasks:
    """Enqueue requests per user that may still be queued or running.

    A slot also ends after `max_age_s`: a task that ClearML deleted, or reset to draft, never
    reaches an ended status, and must not hold its user's slot for ever.
    """

    lookup: Lookup
    max_age_s: float = 7 * 24 * 3600.0
    clock: Callable[[], float] = time.monotonic
    _active: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, user: str, request_id: str) -> None:
        """A request was accepted for `user`."""
        self._active.setdefault(user, {})[request_id] = self.clock()

    def discard(self, user: str, request_id: str) -> None:
        """The request never got in."""
        self._active.get(user, {}).pop(request_id, None)

    async def room(self, user: str, limit: int) -> bool:
        """True when `user` may start one more."""
        active = self._active.get(user, {})
        if len(active) < limit:
            return True
        now = self.clock()
        for rid in [r for r, since in active.items() if now - since >= self.max_age_s]:
            del active[rid]
        ids = sorted(active)
        statuses = await asyncio.gather(*(self.lookup(rid) for rid in ids))
        for rid, status in zip(ids, statuses, strict=True):
            if status in ENDED:
                active.pop(rid, None)
        return len(active) < limit

    def count(self, user: str) -> int:
        """How many this process counts now."""
        return len(self._active.get(user, {}))
