"""The notifier's error tree. Adapters raise these; rules and handlers never see library
exceptions.

    RetriableError (runtime.retry)      retried with capped backoff, then dead-lettered
    ├── BusUnavailable                  Kafka did not take a state record or a notification
    ├── StoreUnavailable (ServerAway)   MongoDB away: waits for it, never dead-lettered for it
    ├── StoreRefused                    MongoDB refused a write
    └── WebhookUnavailable              timeout, refused connection, 408, 429, 5xx
    PermanentError (runtime.retry)      dead-lettered at once
    └── WebhookRejected                 any other answer but 2xx (4xx: the receiver says no)

The timers (offline detection, grouping) never stop on these: what could not be written stays
marked and is written on the next tick.
"""

from __future__ import annotations

from runtime.mongo import StoreRefused as StoreRefused  # noqa: PLC0414 - re-export
from runtime.mongo import StoreUnavailable as StoreUnavailable  # noqa: PLC0414 - re-export
from runtime.retry import PermanentError, RetriableError


class BusUnavailable(RetriableError):
    """Kafka did not acknowledge a state record or a notification."""


class WebhookUnavailable(RetriableError):
    """The webhook did not answer in time, or answered 408, 429 or 5xx."""


class WebhookRejected(PermanentError):
    """The webhook refused the notification (4xx other than 408/429, or an unexpected status)."""

    code = "webhook_rejected"
