"""The alert kinds the notifier's rules raise: how urgent each is and how it is worded, alone or
grouped."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.notifications import Severity

#: Subjects named in a grouped message before "and N more".
LISTED = 10


@dataclass(frozen=True)
class Kind:
    """One rule's name and words. `noun` counts subjects; the verbs complete "<subjects> ..."."""

    name: str
    severity: Severity
    noun: str
    firing: str
    resolved_one: str
    resolved_many: str

    def firing_text(self, subjects: list[str]) -> str:
        """A grouped firing message."""
        return f"{len(subjects)} {self.noun} {self.firing}: {listing(subjects)}."

    def resolved_text(self, subjects: list[str]) -> str:
        """A resolved message, alone or grouped."""
        if len(subjects) == 1:
            return f"{subjects[0]} {self.resolved_one}."
        return f"{len(subjects)} {self.noun} {self.resolved_many}: {listing(subjects)}."


def listing(subjects: list[str]) -> str:
    """`a, b, c and 7 more`."""
    shown = ", ".join(subjects[:LISTED])
    rest = len(subjects) - LISTED
    return f"{shown} and {rest} more" if rest > 0 else shown


MACHINE_OFFLINE = Kind(
    "machine_offline",
    Severity.WARNING,
    "machines",
    "stopped answering",
    "answers again",
    "answer again",
)
GPU_SATURATED = Kind(
    "gpu_saturated", Severity.INFO, "GPUs", "are saturated", "is no longer saturated", "are free"
)
GPU_MEMORY_FULL = Kind(
    "gpu_memory_full",
    Severity.WARNING,
    "GPUs",
    "have their memory nearly full",
    "has memory free again",
    "have memory free again",
)
GPU_HOT = Kind(
    "gpu_hot",
    Severity.CRITICAL,
    "GPUs",
    "run hot",
    "is back to a normal temperature",
    "cooled down",
)
QUEUE_BACKLOG = Kind(
    "queue_backlog", Severity.WARNING, "queues", "are backing up", "drains again", "drain again"
)
QUEUE_NO_WORKER = Kind(
    "queue_no_worker",
    Severity.WARNING,
    "queues",
    "have tasks waiting and no worker",
    "has a worker again",
    "have a worker again",
)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        MACHINE_OFFLINE,
        GPU_SATURATED,
        GPU_MEMORY_FULL,
        GPU_HOT,
        QUEUE_BACKLOG,
        QUEUE_NO_WORKER,
    )
}
