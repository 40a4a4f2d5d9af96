"""Where an enqueue request stands: the one status vocabulary of `enqueue_logs.status`, its
history, the request status API and the log facts, and the groups of it each service asks about.

    accepted ─> cloned ─> queued ─> running ─> completed | failed | stopped
    (ingest)   (enqueuer)  └────── ACTIVE ─────┘└────────── ENDED ──────────┘
                          └──────────────────── SETTLED ────────────────────┘

A request can also fail or stop from any earlier status (a rejected enqueue fails from
`accepted`). Groups are sets of plain strings, as MongoDB stores and queries them.
"""

from __future__ import annotations

from enum import StrEnum


class RequestStatus(StrEnum):
    """An enqueue request's status, in the order a request passes through them."""

    ACCEPTED = "accepted"
    CLONED = "cloned"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


#: Every status, in order.
ALL: tuple[str, ...] = tuple(s.value for s in RequestStatus)
#: Ended: the request leaves the monitor's watch and gives back its user's task slot.
ENDED: frozenset[str] = frozenset(
    s.value for s in (RequestStatus.COMPLETED, RequestStatus.FAILED, RequestStatus.STOPPED)
)
#: On the cluster: the statuses the monitor follows a request from.
ACTIVE: tuple[str, ...] = (RequestStatus.QUEUED.value, RequestStatus.RUNNING.value)
#: The enqueuer's part is done (queued or later): a redelivery must not clone again. Also the
#: statuses the logger is sent a fact for (`accepted` and `cloned` it never is).
SETTLED: frozenset[str] = frozenset(ACTIVE) | ENDED
#: Ended without success: a flow author is told why.
UNSUCCESSFUL: frozenset[str] = frozenset({RequestStatus.FAILED.value, RequestStatus.STOPPED.value})
#: The statuses an enqueue attempt is counted at in the read models, once per request: queued
#: (it reached the cluster) or failed (before it did, or after).
COUNTED: frozenset[str] = frozenset({RequestStatus.QUEUED.value, RequestStatus.FAILED.value})
