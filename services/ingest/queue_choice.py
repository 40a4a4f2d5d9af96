"""`queue_name: "auto"`: pick, among the queues a task mapping allows, the one where the task
would start soonest. Pure logic over QueueState read models, the clock passed in.

Where the choice is made, and why: in ingest, at accept time, from the `queues` read model the
monitor keeps (cached a second or two). The 202 answer must name the queue, so the choice has to
be made before it; the enqueuer keeps trusting the queue in its command (it does not know the
mapping's allowed queues), and a replayed command enqueues where the first delivery said.
The state is at most a poll interval plus the cache old, which is what "a free GPU now" can mean
for a task that takes seconds to clone anyway.

The order, best first:
1. a queue with a free GPU behind one of its idle workers (most free GPUs first);
2. a queue with an idle worker (ClearML starts the task at once; its GPUs are not monitored);
3. a queue some worker listens on, by expected wait: (length + 1) / drain rate, the drain rate
   being average length / average wait over the last minutes (Little's law); an empty queue
   whose rate is unknown counts as no wait, a non-empty one as an unknown, long wait;
4. a queue nobody listens on.
Ties keep the mapping's order: its default queue first, then the allowed ones as listed.
No recent state for any allowed queue: the mapping's default queue, and the reason says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.resources import QueueState

#: The queue name that asks mlbus to choose (a ClearML queue of that name cannot be asked for).
AUTO = "auto"


@dataclass(frozen=True)
class Choice:
    """The queue chosen, and why, in a flow author's words."""

    queue: str
    reason: str


def candidates(default_queue: str, allowed: Sequence[str]) -> list[str]:
    """The queues a mapping allows, default first, each once."""
    return list(dict.fromkeys([default_queue, *allowed]))


def expected_wait_s(state: QueueState) -> float:
    """Seconds a task sent now would wait, as far as the recent averages tell (inf: unknown)."""
    if state.avg_wait_s and state.avg_length:
        return (state.length + 1) * state.avg_wait_s / state.avg_length
    return 0.0 if state.length == 0 else math.inf


def _rank(state: QueueState) -> tuple[int, int, float]:
    if state.free_gpus > 0:
        return (0, -state.free_gpus, 0.0)
    if state.idle_workers:
        return (1, 0, 0.0)
    if state.workers:
        return (2, 0, expected_wait_s(state))
    return (3, 0, 0.0)


def choose_queue(
    default_queue: str,
    allowed: Sequence[str],
    states: Mapping[str, QueueState],
    now: datetime,
    max_age_s: float,
) -> Choice:
    """The best allowed queue by the module's order; `states` are keyed by queue name."""
    names = candidates(default_queue, allowed)
    fresh = [
        s
        for n in names
        if (s := states.get(n)) is not None and now - s.at <= timedelta(seconds=max_age_s)
    ]
    if not fresh:
        return Choice(
            default_queue,
            f"auto: no recent state of the allowed queues; using the default queue "
            f"'{default_queue}'",
        )
    best = min(fresh, key=lambda s: (*_rank(s), names.index(s.name)))
    return Choice(best.name, _reason(best))


def _reason(state: QueueState) -> str:
    kind = _rank(state)[0]
    if kind == 0:
        plural = "s" if state.free_gpus > 1 else ""
        return f"auto: '{state.name}' has {state.free_gpus} free GPU{plural} now"
    if kind == 1:
        return f"auto: no free GPU seen; '{state.name}' has an idle worker now"
    if kind == 2:
        wait = expected_wait_s(state)
        about = f"about {wait:.0f} s" if math.isfinite(wait) else "unknown"
        return (
            f"auto: no free GPU or idle worker; '{state.name}' has the shortest expected wait "
            f"({state.length} waiting, {about})"
        )
    return f"auto: no worker listens on the allowed queues; using '{state.name}'"
