"""The logger's error tree. The store raises these; handlers never see library exceptions.

    RetriableError (runtime.retry)     retried with capped backoff, then dead-lettered
    ├── StoreUnavailable (ServerAway)  MongoDB away: waits for it, never dead-lettered for it
    └── StoreRefused                   MongoDB refused a write
    PermanentError (runtime.retry)
    └── (none: a message that decodes always folds; one that does not is a SchemaError)

A fold that failed after its keys were claimed stays pending in the process, so the retry of the
same message applies it instead of taking it for a duplicate.
"""

from __future__ import annotations

from runtime.retry import RetriableError, ServerAway


class StoreUnavailable(ServerAway):
    """MongoDB did not answer."""


class StoreRefused(RetriableError):
    """MongoDB answered, but refused a write (not as a duplicate): retried within the bound,
    then the message fails (unlike StoreUnavailable, this is about the message)."""
