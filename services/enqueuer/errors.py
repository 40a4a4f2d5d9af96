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

from runtime.retry import RetriableError, ServerAway


class StoreUnavailable(ServerAway):
    """MongoDB did not answer."""


class StoreRefused(RetriableError):
    """MongoDB answered, but refused a write (not as a duplicate): retried within the bound,
    then the message fails (unlike StoreUnavailable, this is about the message)."""


class PublishFailed(RetriableError):
    """Kafka did not take a task event; the retry finds the durable record and sends it again."""
