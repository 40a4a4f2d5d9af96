"""Everything the notifier knows, as one object that maps each state key to its current record
(what the state topic should hold) and takes records read back from it at start-up."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TypeVar

from schemas.notifier_state import NotifierState, OutboxEntry
from services.notifier import keys
from services.notifier.alerts import AlertBook, Grouping
from services.notifier.machines import MachineLimits, MachineRules
from services.notifier.queues import QueueLimits, QueueRules

log = logging.getLogger(__name__)
V = TypeVar("V")


class Memory:
    """The alert book, the rules' own state, and the outbox of notifications not yet out."""

    def __init__(
        self, grouping: Grouping, machines: MachineLimits, queues: QueueLimits, now: datetime
    ) -> None:
        self.book = AlertBook(grouping)
        self.machines = MachineRules(machines, self.book, now)
        self.queues = QueueRules(queues, self.book)
        #: Notifications decided and not yet known to be published, by id, oldest first.
        self.outbox: dict[str, OutboxEntry] = {}

    def current(self, key: str) -> NotifierState | None:
        """What the state topic should hold under `key` now (None: a tombstone)."""
        kind, _, rest = key.partition(":")
        prefix = kind + ":"
        if prefix == keys.MACHINE and (seen := self.machines.machines.get(rest)):
            return NotifierState(machine=seen)
        if prefix == keys.ALERT and (record := self.book.alerts.get(rest)):
            return NotifierState(alert=record)
        if prefix == keys.WINDOW and (window := self.machines.windows.get(rest)):
            return NotifierState(window=window)
        if prefix == keys.OUTBOX and (entry := self.outbox.get(rest)):
            return NotifierState(outbox=entry)
        return None

    def apply(self, key: str, state: NotifierState | None) -> None:
        """Take one record read back from the state topic, in the topic's order."""
        kind, _, rest = key.partition(":")
        prefix = kind + ":"
        if prefix == keys.MACHINE:
            _put(self.machines.machines, rest, state.machine if state else None)
        elif prefix == keys.WINDOW:
            _put(self.machines.windows, rest, state.window if state else None)
        elif prefix == keys.ALERT:
            if state and state.alert:
                self.book.restore(state.alert)
            else:
                self.book.forget(rest)
        elif prefix == keys.OUTBOX:
            entry = state.outbox if state else None
            _put(self.outbox, rest, entry)
            for record in entry.alerts if entry else ():
                self.book.restore(record)
        else:
            log.warning("unknown state key %r ignored", key)


def _put(table: dict[str, V], key: str, value: V | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
