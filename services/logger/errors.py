"""The logger's error tree. The store raises these; handlers never see library exceptions.

    RetriableError (runtime.retry)     retried with capped backoff, then dead-lettered
    ├── StoreUnavailable (ServerAway)  MongoDB away: waits for it, never dead-lettered for it
    │   └── ClaimHeld                  another copy is folding the same fact now: waits for it
    └── StoreRefused                   MongoDB refused a write
    PermanentError (runtime.retry)
    └── (none: a message that decodes always folds; one that does not is a SchemaError)

A fold that failed after its keys were claimed stays pending in the process, so the retry of the
same message applies it instead of taking it for a duplicate.
"""

from __future__ import annotations

from runtime.mongo import StoreRefused as StoreRefused  # noqa: PLC0414 - re-export
from runtime.mongo import StoreUnavailable as StoreUnavailable  # noqa: PLC0414 - re-export


class ClaimHeld(StoreUnavailable):
    """Another logger copy claimed this fact moments ago and has not finished folding it (a
    fact that arrives on both topics, each read by another copy): the message waits, as for an
    absent store, until the fold is done (then it is a redelivery) or its claim goes stale."""
