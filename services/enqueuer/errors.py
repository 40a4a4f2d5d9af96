"""The enqueuer's error tree. Adapters raise these; handlers never see library exceptions.

RetriableError (runtime.retry)            retried with capped backoff, then dead-lettered
├── ClearMLUnavailable (runtime.clearml)  5xx, timeout, refused connection, refused credentials
├── StoreUnavailable (ServerAway)         MongoDB away: waits for it, never dead-lettered for it
├── StoreRefused                          MongoDB refused a write
└── PublishFailed                         the broker did not take a task event
PermanentError (runtime.retry)            logged on the request, dead-lettered at once
└── ClearMLRejected (runtime.clearml)     4xx: unknown task or queue, illegal status
"""

from __future__ import annotations

from runtime.mongo import StoreRefused as StoreRefused  # noqa: PLC0414 - re-export
from runtime.mongo import StoreUnavailable as StoreUnavailable  # noqa: PLC0414 - re-export
from runtime.retry import RetriableError


class PublishFailed(RetriableError):
    """Kafka did not take a task event; the retry finds the durable record and sends it again."""
