"""Replica choice: healthy replicas only, least outstanding requests first, with a circuit
breaker per replica.

Breaker states: closed (in rotation) → open after `failures` failures in a row (out of rotation
for `cooldown_s`) → half-open (one trial call) → closed on success, open again on failure.
Opening and closing are reported through `on_change`, which publishes a notification.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum

Clock = Callable[[], float]


class BreakerState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts failures in a row; takes its replica out for a cool-down after too many."""

    def __init__(self, failures: int, cooldown_s: float, clock: Clock = time.monotonic) -> None:
        self._limit, self._cooldown, self._clock = failures, cooldown_s, clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> BreakerState:
        """Closed, open, or half-open once the cool-down has passed."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allows(self) -> bool:
        """Whether a call may go to the replica now (half-open: one trial at a time)."""
        state = self.state
        return state is BreakerState.CLOSED or (state is BreakerState.HALF_OPEN and not self._trial)

    def started(self) -> None:
        """A call was sent; in half-open state it is the trial."""
        if self.state is BreakerState.HALF_OPEN:
            self._trial = True

    def succeeded(self) -> bool:
        """Record a success; True when this closed an open breaker."""
        was_open = self._opened_at is not None
        self._failures, self._opened_at, self._trial = 0, None, False
        return was_open

    def failed(self) -> bool:
        """Record a failure; True when this opened a closed breaker."""
        self._failures += 1
        if self._opened_at is not None:  # a failed trial: out again for a full cool-down
            self._opened_at, self._trial = self._clock(), False
            return False
        if self._failures >= self._limit:
            self._opened_at = self._clock()
            return True
        return False


class Replica:
    """One base URL of a serving machine, with its load and its health."""

    def __init__(self, url: str, index: int, breaker: CircuitBreaker) -> None:
        self.url, self.index, self.breaker = url, index, breaker
        self.outstanding = 0
        self.probe_ok = True  # the last /health answer (True while unknown)
        self.picked = 0  # when it was last picked, for round robin among equals

    @property
    def available(self) -> bool:
        """In rotation: /health not failing and the breaker lets a call through."""
        return self.probe_ok and self.breaker.allows()


#: Told (replica, opened) when a breaker opens (True) or closes again (False).
BreakerListener = Callable[[str, Replica, bool], None]


class ReplicaPool:
    """The replicas of one serving machine."""

    def __init__(
        self,
        machine_id: str,
        urls: list[str],
        *,
        failures: int,
        cooldown_s: float,
        on_change: BreakerListener | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.machine_id, self._on_change = machine_id, on_change
        self._failures, self._cooldown, self._clock = failures, cooldown_s, clock
        self.replicas = [self._new(url, i) for i, url in enumerate(urls)]
        self._picks = 0

    def _new(self, url: str, index: int) -> Replica:
        return Replica(url, index, CircuitBreaker(self._failures, self._cooldown, self._clock))

    @property
    def urls(self) -> list[str]:
        """The base URLs, in index order."""
        return [r.url for r in self.replicas]

    def resize(self, urls: list[str]) -> None:
        """Take a new list of base URLs, keeping the state of replicas that stay."""
        known = {r.url: r for r in self.replicas}
        self.replicas = []
        for i, url in enumerate(urls):
            replica = known.get(url) or self._new(url, i)
            replica.index = i
            self.replicas.append(replica)

    def choose(self, exclude: frozenset[str] = frozenset()) -> Replica | None:
        """The available replica with the fewest calls in flight (the least recently picked
        among equals); None when none is available."""
        candidates = [r for r in self.replicas if r.available and r.url not in exclude]
        if not candidates:
            return None
        best = min(candidates, key=lambda r: (r.outstanding, r.picked))
        self._picks += 1
        best.picked = self._picks
        return best

    @contextmanager
    def calling(self, replica: Replica) -> Iterator[None]:
        """Count a call as outstanding while it runs."""
        replica.outstanding += 1
        replica.breaker.started()
        try:
            yield
        finally:
            replica.outstanding -= 1

    def record(self, replica: Replica, ok: bool) -> None:
        """Feed a call's outcome to the replica's breaker, telling the listener of changes."""
        changed = replica.breaker.succeeded() if ok else replica.breaker.failed()
        if changed and self._on_change is not None:
            self._on_change(self.machine_id, replica, not ok)
