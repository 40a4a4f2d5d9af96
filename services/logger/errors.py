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

from runtime.mongo import StoreRefused as StoreRefused  # noqa: PLC0414 - re-export
from runtime.mongo import StoreUnavailable as StoreUnavailable  # noqa: PLC0414 - re-export
