"""The monitor's error tree. Adapters raise these; the poller and handlers never see library
exceptions.

    RetriableError (runtime.retry)            the pollers log it and try again next tick
    ├── ClearMLUnavailable (runtime.clearml)  5xx, timeout, refused connection
    ├── StoreUnavailable                      MongoDB away
    └── PublishFailed                         Kafka did not take a task event or a state
    PermanentError (runtime.retry)
    └── ClearMLRejected (runtime.clearml)     4xx: the poll itself was refused (logged; next tick)

Nothing here stops the monitor: a request's change is recorded and published once the outside
system is back, because the in-memory state only moves after the write succeeded; a resource or
queue state that was not both published and stored goes out again on the next tick.
"""

from __future__ import annotations

from runtime.mongo import StoreUnavailable as StoreUnavailable  # noqa: PLC0414 - re-export
from runtime.retry import RetriableError


class PublishFailed(RetriableError):
    """Kafka did not acknowledge a task event."""
